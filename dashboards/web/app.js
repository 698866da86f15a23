// photorig web dashboard: one MQTT.js connection over the broker's websockets listener, as
// the photorig-dashboard user (read everything, write only requests). Everything shown comes
// from retained topics, so a page opened late sees the current state at once.
'use strict';

(function () {
    const $ = (id) => document.getElementById(id);
    const rigs = new Map();  // rig_id -> { el, previewUrl }
    let client = null;
    let prefix = 'photorig';

    // ---- connection ----------------------------------------------------------------------

    // Query parameters may prefill the form (url, username, prefix), never the password: a URL
    // ends up in the web server's access log and the browser's history. The password is typed
    // into the form; nothing is stored, so reloading asks again.
    function initForm() {
        const q = new URLSearchParams(window.location.search);
        const host = window.location.hostname || '127.0.0.1';
        $('broker-url').value = q.get('url') || `ws://${host}:9001`;
        $('username').value = q.get('username') || 'photorig-dashboard';
        $('password').value = '';
        $('prefix').value = q.get('prefix') || 'photorig';
        $('connect-form').addEventListener('submit', (e) => {
            e.preventDefault();
            connect();
        });
        $('disconnect').addEventListener('click', disconnect);
        if (q.has('password')) {
            // Refused, and taken out of the address bar (and history) at least.
            q.delete('password');
            const rest = q.toString();
            window.history.replaceState(null, '', window.location.pathname + (rest ? '?' + rest : ''));
            showError('A password in the address is not accepted (it would be logged): type it here.');
        }
    }

    function setStatus(text, cls) {
        const s = $('connection-status');
        s.textContent = text;
        s.className = 'badge ' + cls;
    }

    function showError(text) {
        const e = $('connection-error');
        e.textContent = text || '';
        e.hidden = !text;
    }

    function connect() {
        disconnect();
        showError('');
        prefix = $('prefix').value.trim() || 'photorig';
        const url = $('broker-url').value.trim();
        setStatus('connecting', 'pending');
        client = mqtt.connect(url, {
            username: $('username').value,
            password: $('password').value,
            clientId: 'photorig-web-' + Math.random().toString(16).slice(2, 10),
            protocolVersion: 5,
            reconnectPeriod: 2000,
            connectTimeout: 10000,
        });
        client.on('connect', () => {
            setStatus('connected', 'online');
            showError('');
            $('connect').disabled = true;
            $('disconnect').disabled = false;
            const topics = ['availability', 'state', 'uploader/availability', 'uploader/state', 'scan/state',
                'scan/progress', 'preview', 'response/#'].map((t) => `${prefix}/+/${t}`);
            client.subscribe(topics, { qos: 1 }, (err) => {
                if (err) showError('subscribe failed: ' + err.message);
            });
        });
        client.on('reconnect', () => setStatus('reconnecting', 'pending'));
        client.on('offline', () => setStatus('offline', 'offline'));
        client.on('error', (err) => {
            // Wrong password: stop retrying, the user has to fix the form.
            showError('connection failed: ' + err.message);
            if (/auth|Not authorized|Bad User Name or Password/i.test(err.message)) disconnect();
        });
        client.on('message', onMessage);
    }

    function disconnect() {
        if (client) {
            client.end(true);
            client = null;
        }
        setStatus('disconnected', 'offline');
        $('connect').disabled = false;
        $('disconnect').disabled = true;
    }

    // ---- incoming ------------------------------------------------------------------------

    function onMessage(topic, payload) {
        if (!topic.startsWith(prefix + '/')) return;
        const parts = topic.slice(prefix.length + 1).split('/');
        const rigId = parts[0];
        const sub = parts.slice(1).join('/');
        if (rigId === 'group' || rigId.startsWith('_')) return;  // not a rig (group requests, probes)
        const rig = rigFor(rigId);
        if (sub === 'preview') return showPreview(rig, payload);
        const text = new TextDecoder().decode(payload);
        if (sub === 'availability') return setBadge(rig, 'availability', text);
        if (sub === 'uploader/availability') return setBadge(rig, 'uploader_availability', text);
        const data = parseJson(text);
        if (sub === 'state') return showState(rig, data);
        if (sub === 'uploader/state') return showUploader(rig, data);
        if (sub === 'scan/state' || sub === 'scan/progress') return showScan(rig, data);
        if (sub.startsWith('response/')) return showResponse(rig, sub.slice('response/'.length), data, text);
    }

    function parseJson(text) {
        try {
            return JSON.parse(text);
        } catch (e) {
            return null;
        }
    }

    function rigFor(rigId) {
        let rig = rigs.get(rigId);
        if (rig) return rig;
        const el = $('rig-template').content.firstElementChild.cloneNode(true);
        el.dataset.rig = rigId;
        rig = { id: rigId, el, previewUrl: null };
        field(rig, 'rig_id').textContent = rigId;
        el.querySelector('[data-action="capture"]').addEventListener('click', () => {
            const count = parseInt(field(rig, 'capture_count').value, 10) || 1;
            request(rig, 'capture', { count });
        });
        el.querySelector('[data-action="scan-start"]').addEventListener('click', () => {
            const body = { action: 'start', positions: parseInt(field(rig, 'scan_positions').value, 10) || 1 };
            const batch = field(rig, 'scan_batch').value.trim();
            if (batch) body.batch = batch;
            request(rig, 'scan', body);
        });
        el.querySelector('[data-action="scan-abort"]').addEventListener('click', () => {
            request(rig, 'scan', { action: 'abort' });
        });
        // Keep the rigs in name order so they do not jump around as messages arrive.
        const after = [...rigs.keys()].sort().find((id) => id > rigId);
        $('rigs').insertBefore(el, after ? rigs.get(after).el : null);
        $('no-rigs').hidden = true;
        rigs.set(rigId, rig);
        return rig;
    }

    function field(rig, name) {
        return rig.el.querySelector(`[data-field="${name}"]`);
    }

    function setText(rig, name, value) {
        field(rig, name).textContent = value === undefined || value === null || value === '' ? '–' : String(value);
    }

    function setBadge(rig, name, text) {
        const b = field(rig, name);
        b.textContent = text || 'unknown';
        b.className = 'badge ' + (text === 'online' ? 'online' : 'offline');
    }

    function bytes(n) {
        if (typeof n !== 'number') return null;
        const units = ['B', 'KB', 'MB', 'GB', 'TB'];
        let i = 0;
        while (n >= 1000 && i < units.length - 1) {
            n /= 1000;
            i++;
        }
        return `${n.toFixed(i ? 1 : 0)} ${units[i]}`;
    }

    function showState(rig, s) {
        if (!s || typeof s !== 'object') return;
        const list = field(rig, 'cameras');
        list.replaceChildren();
        for (const c of s.cameras || []) {
            const li = document.createElement('li');
            li.dataset.serial = c.serial || '';
            li.textContent = `${c.model || 'camera'} · ${c.serial || '?'} · ${c.port || ''}`;
            li.className = c.connected === false ? 'disconnected' : 'connected';
            list.appendChild(li);
        }
        if (!list.children.length) {
            const none = document.createElement('li');
            none.className = 'muted';
            none.textContent = 'none reported';
            list.appendChild(none);
        }
        setText(rig, 'photos_today', s.photos_today);
        setText(rig, 'last_capture_at', s.last_capture_at);
        setText(rig, 'busy', s.busy === undefined ? null : (s.busy ? 'yes' : 'no'));
        setText(rig, 'spool_files', s.spool_files);
        setText(rig, 'disk_free', bytes(s.disk_free_bytes));
        setText(rig, 'version', s.version);
    }

    function showUploader(rig, s) {
        if (!s || typeof s !== 'object') return;
        setText(rig, 'queue_depth', s.queue_depth);
        setText(rig, 'uploaded', s.done);
        setText(rig, 'upload_failed', s.failed);
        setText(rig, 'upload_target', s.target);
        setText(rig, 'upload_error', s.last_error);
    }

    function showScan(rig, s) {
        if (!s || typeof s !== 'object' || !s.state) return;
        setText(rig, 'scan_state', s.state);
        const of = Number(s.of) || 0;
        const step = Number(s.step) || 0;
        field(rig, 'scan_step').textContent = of ? `${step}/${of}` : '';
        const bar = field(rig, 'scan_progress');
        bar.max = of || 1;
        bar.value = step;
        const detail = [];
        if (s.batch) detail.push(`batch ${s.batch}`);
        if (typeof s.photos === 'number') detail.push(`${s.photos} photos`);
        if (typeof s.eta_s === 'number' && s.state === 'running') detail.push(`about ${s.eta_s} s left`);
        if (s.waiting_for) detail.push(`waiting for ${s.waiting_for}`);
        if (s.error && s.error.code) detail.push(`${s.error.code}: ${s.error.message || ''}`);
        field(rig, 'scan_detail').textContent = detail.join(' · ');
    }

    // A retained preview is JPEG bytes; an empty retained message clears it.
    function showPreview(rig, payload) {
        const img = field(rig, 'preview');
        const placeholder = field(rig, 'preview_placeholder');
        if (rig.previewUrl) URL.revokeObjectURL(rig.previewUrl);
        rig.previewUrl = null;
        if (!payload || payload.length === 0) {
            img.hidden = true;
            img.removeAttribute('src');
            placeholder.hidden = false;
            return;
        }
        rig.previewUrl = URL.createObjectURL(new Blob([payload], { type: 'image/jpeg' }));
        img.src = rig.previewUrl;
        img.hidden = false;
        placeholder.hidden = true;
    }

    function showResponse(rig, verb, r, text) {
        const li = document.createElement('li');
        li.dataset.verb = verb;
        if (r && typeof r === 'object') {
            li.dataset.status = r.status || '';
            if (r.transaction !== undefined) li.dataset.transaction = String(r.transaction);
            li.className = r.status === 'ok' ? 'ok' : 'error';
            li.textContent = `${new Date().toLocaleTimeString()} ${verb}: ${r.status}` + describe(verb, r);
        } else {
            li.className = 'error';
            li.textContent = `${verb}: ${text}`;
        }
        const list = field(rig, 'responses');
        list.insertBefore(li, list.firstChild);
        while (list.children.length > 20) list.removeChild(list.lastChild);
    }

    function describe(verb, r) {
        if (r.status !== 'ok') return r.error ? ` ${r.error.code}: ${r.error.message}` : '';
        const d = r.data || {};
        if (verb === 'capture' && typeof d.count === 'number') return ` ${d.count} photo(s)${d.batch ? ' in ' + d.batch : ''}`;
        if (verb === 'scan' && d.scan_id) return ` scan ${d.scan_id}${d.of ? ', ' + d.of + ' positions' : ''}`;
        return '';
    }

    // ---- outgoing ------------------------------------------------------------------------

    function request(rig, verb, body) {
        if (!client || !client.connected) {
            showError('not connected');
            return;
        }
        const transaction = 'web-' + Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 6);
        body.transaction = transaction;
        // Requests are never retained: a retained request would fire again on every reconnect.
        client.publish(`${prefix}/${rig.id}/request/${verb}`, JSON.stringify(body), { qos: 1, retain: false }, (err) => {
            if (err) showError(`${verb} request failed: ${err.message}`);
        });
    }

    initForm();
})();

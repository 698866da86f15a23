// photorig web dashboard: one MQTT.js connection over the broker's websockets listener, as
// the photorig-dashboard user (read everything, write only requests). Everything shown comes
// from retained topics, so a page opened late sees the current state at once. Connected to
// the central broker of a fleet, the fleet table shows one row of health per rig, and a group
// capture is followed per rig (photos captured and uploaded, rigs that missed photos marked).
'use strict';

(function () {
    const $ = (id) => document.getElementById(id);
    // rig_id -> { id, el (card), row (fleet table), previewUrl, availability, state, uploader, bridge }
    const rigs = new Map();
    let client = null;
    let prefix = 'photorig';
    // The latest group capture (sent from here, or seen on the broker from another client):
    // { id (batch), group, transaction, captureAt, rigs: rig_id -> { captured, uploaded, response } }
    let groupBatch = null;
    let groupTimer = null;
    // A rig that sent photos of the batch but no response this long after capture_at missed it.
    const GROUP_RESPONSE_TIMEOUT_MS = 15000;

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
        $('group-form').addEventListener('submit', (e) => {
            e.preventDefault();
            groupCapture();
        });
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
                'scan/progress', 'preview', 'response/#', 'bridge/state', 'capture', 'upload/events']
                .map((t) => `${prefix}/+/${t}`);
            // Group captures sent by other clients (rigctl fleet) become the followed batch too.
            topics.push(`${prefix}/group/+/request/capture`);
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
        if (rigId === 'group') {
            if (parts.length === 4 && parts[2] === 'request' && parts[3] === 'capture')
                onGroupRequest(parts[1], parseJson(new TextDecoder().decode(payload)));
            return;
        }
        if (rigId.startsWith('_')) return;  // not a rig (probes)
        const rig = rigFor(rigId);
        if (sub === 'preview') return showPreview(rig, payload);
        const text = new TextDecoder().decode(payload);
        if (sub === 'availability') {
            rig.availability = text;
            showHealth(rig);
            return setBadge(rig, 'availability', text);
        }
        if (sub === 'uploader/availability') return setBadge(rig, 'uploader_availability', text);
        if (sub === 'bridge/state') {
            rig.bridge = text;
            return showHealth(rig);
        }
        const data = parseJson(text);
        if (sub === 'state') {
            if (data && typeof data === 'object') rig.state = data;
            showHealth(rig);
            showBatchAll();  // the camera count is what a rig's photos are measured against
            return showState(rig, data);
        }
        if (sub === 'uploader/state') {
            if (data && typeof data === 'object') rig.uploader = data;
            showHealth(rig);
            return showUploader(rig, data);
        }
        if (sub === 'capture') return onCaptureEvent(rig, data);
        if (sub === 'upload/events') return onUploadEvent(rig, data);
        if (sub === 'scan/state' || sub === 'scan/progress') return showScan(rig, data);
        if (sub.startsWith('response/')) {
            const verb = sub.slice('response/'.length);
            if (verb === 'capture') onGroupResponse(rig, data);
            return showResponse(rig, verb, data, text);
        }
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
        const row = $('fleet-row-template').content.firstElementChild.cloneNode(true);
        row.dataset.rig = rigId;
        rig = { id: rigId, el, row, previewUrl: null, availability: null, state: null, uploader: null, bridge: null };
        row.querySelector('[data-col="rig_id"]').textContent = rigId;
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
        $('fleet-rows').insertBefore(row, after ? rigs.get(after).row : null);
        $('no-rigs').hidden = true;
        $('fleet-empty').hidden = true;
        rigs.set(rigId, rig);
        showHealth(rig);
        showBatch(rig);
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

    // ---- fleet table: one row of health per rig ------------------------------------------

    function cell(rig, col) {
        return rig.row.querySelector(`[data-col="${col}"]`);
    }

    // Text only (MQTT text is never markup); `level` is '', 'ok', 'warn' or 'bad'.
    function setCell(rig, col, value, level) {
        const c = cell(rig, col);
        c.textContent = value === undefined || value === null || value === '' ? '–' : String(value);
        c.className = level || '';
    }

    function showHealth(rig) {
        const s = rig.state || {};
        const u = rig.uploader || {};
        setCell(rig, 'availability', rig.availability || 'unknown', rig.availability === 'online' ? 'ok' : 'bad');
        if (Array.isArray(s.cameras)) {
            const online = s.cameras.filter((c) => c && c.connected !== false).length;
            setCell(rig, 'cameras', `${online}/${s.cameras.length}`, online < s.cameras.length ? 'bad' : 'ok');
        } else {
            setCell(rig, 'cameras', null);
        }
        setCell(rig, 'spool_files', typeof s.spool_files === 'number' ? s.spool_files : null);
        setCell(rig, 'queue_depth', typeof u.queue_depth === 'number' ? u.queue_depth : null);
        const error = s.last_error ? String(s.last_error) : u.last_error ? `upload: ${u.last_error}` : null;
        setCell(rig, 'last_error', error, error ? 'bad' : '');
        const bridge = bridgeConnected(rig);
        setCell(rig, 'bridge', bridge === null ? null : bridge ? 'connected' : 'down', bridge === false ? 'bad' : 'ok');
        showClock(rig, s.clock);
    }

    // mosquitto's own notification (`1`/`0`, retained; the central broker turns it to `0` by a
    // will when the rig's WAN drops) wins over the rig's state, which is stale in that case.
    // null: no bridge seen (a rig on this broker directly).
    function bridgeConnected(rig) {
        if (rig.bridge === '1' || rig.bridge === '0') return rig.bridge === '1';
        const b = rig.state && rig.state.bridge;
        if (b && typeof b === 'object' && typeof b.connected === 'boolean') return b.connected;
        return null;
    }

    function microseconds(us) {
        return us < 1000 ? `${Math.round(us)} µs` : `${(us / 1000).toFixed(1)} ms`;
    }

    function showClock(rig, clock) {
        if (!clock || typeof clock !== 'object') return setCell(rig, 'clock', null);
        const est = typeof clock.est_error_us === 'number' ? `±${microseconds(clock.est_error_us)}` : '';
        if (clock.synced === false) return setCell(rig, 'clock', `unsynced ${est}`.trim(), 'bad');
        setCell(rig, 'clock', est || (clock.synced ? 'synced' : null), 'ok');
    }

    // ---- group capture and the latest batch --------------------------------------------

    // A group name is one topic level; the same rule as the agent's batch names.
    function safeName(name) {
        return /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,39}$/.test(name) && !name.includes('..');
    }

    function groupCapture() {
        const group = $('group-name').value.trim();
        if (!safeName(group)) {
            showGroupStatus('A group name is 1-40 letters, digits, ".", "_" or "-".', true);
            return;
        }
        const body = {
            camera: 'all',
            capture_at: Date.now() + 2000,
            batch: `web-${group}-${Date.now().toString(36)}`,
            transaction: 'web-' + newId(),
        };
        // Followed at once: the rigs' photos may arrive before the broker echoes the request.
        startBatch(group, body);
        publishRequest(`${prefix}/group/${group}/request/capture`, 'group capture', body);
    }

    function onGroupRequest(group, body) {
        if (!body || typeof body !== 'object' || typeof body.batch !== 'string' || !body.batch) return;
        if (groupBatch && groupBatch.id === body.batch) return;  // ours, echoed
        startBatch(group, body);
    }

    function startBatch(group, body) {
        groupBatch = {
            id: body.batch,
            group,
            transaction: body.transaction === undefined ? null : String(body.transaction),
            captureAt: typeof body.capture_at === 'number' ? body.capture_at : Date.now(),
            rigs: new Map(),
        };
        // Rigs still silent after the deadline are marked then.
        if (groupTimer) clearTimeout(groupTimer);
        const wait = Math.max(0, groupBatch.captureAt - Date.now()) + GROUP_RESPONSE_TIMEOUT_MS;
        groupTimer = setTimeout(showBatchAll, wait);
        showBatchAll();
    }

    function batchRig(rig) {
        let r = groupBatch.rigs.get(rig.id);
        if (!r) {
            r = { captured: new Set(), uploaded: new Set(), response: null };
            groupBatch.rigs.set(rig.id, r);
        }
        return r;
    }

    function onCaptureEvent(rig, photo) {
        if (!groupBatch || !photo || typeof photo !== 'object' || photo.batch !== groupBatch.id) return;
        batchRig(rig).captured.add(String(photo.capture_id));
        showBatchAll();
    }

    function onUploadEvent(rig, e) {
        if (!groupBatch || !e || typeof e !== 'object' || e.type !== 'done' || e.batch !== groupBatch.id) return;
        batchRig(rig).uploaded.add(String(e.capture_id || e.job_id));
        showBatchAll();
    }

    // A rig answers a group request on its own response topic, with the transaction echoed.
    function onGroupResponse(rig, r) {
        if (!groupBatch || !r || typeof r !== 'object') return;
        const ours = (groupBatch.transaction !== null && String(r.transaction) === groupBatch.transaction) ||
            (r.data && typeof r.data === 'object' && r.data.batch === groupBatch.id);
        if (!ours) return;
        batchRig(rig).response = r;
        showBatchAll();
    }

    // Photos a rig says it took: its capture events, or its response's count if larger (the
    // events may still be on their way).
    function photosReported(r) {
        const d = r.response && r.response.status === 'ok' && r.response.data;
        return Math.max(r.captured.size, d && typeof d.count === 'number' ? d.count : 0);
    }

    // Measured against the rig's camera count (camera "all"); without a known state, against
    // the most any other rig of the batch took.
    function photosExpected(rig) {
        const cams = rig.state && Array.isArray(rig.state.cameras) ? rig.state.cameras.length : 0;
        if (cams) return cams;
        let most = 0;
        for (const [id, other] of groupBatch.rigs) if (id !== rig.id) most = Math.max(most, photosReported(other));
        return most;
    }

    // null while it may still come right; otherwise why the rig missed photos ('' if it did not).
    function missedReason(rig, r) {
        const resp = r.response;
        if (!resp) return Date.now() > groupBatch.captureAt + GROUP_RESPONSE_TIMEOUT_MS ? 'no response' : null;
        if (resp.status !== 'ok') {
            const e = resp.error && typeof resp.error === 'object' ? resp.error : {};
            return `${e.code || 'error'}: ${e.message || ''}`.trim();
        }
        const errors = resp.data && Array.isArray(resp.data.errors) ? resp.data.errors : [];
        if (errors.length) return errors.map((e) => (e && e.code) || 'error').join(', ');
        const got = photosReported(r);
        const want = photosExpected(rig);
        return got < want ? `${got} of ${want} photos` : '';
    }

    // A rig whose state lists the group acts on its requests (docs/interface.md, `groups`):
    // a member that neither answers nor sends a photo missed the capture too.
    function isMember(rig, group) {
        return !!rig.state && Array.isArray(rig.state.groups) && rig.state.groups.includes(group);
    }

    function showBatch(rig) {
        let r = groupBatch && groupBatch.rigs.get(rig.id);
        if (!r && groupBatch && isMember(rig, groupBatch.group)) r = batchRig(rig);
        rig.row.classList.remove('missed');
        if (!r) {
            for (const col of ['batch_captured', 'batch_uploaded', 'batch_result']) setCell(rig, col, null);
            return;
        }
        setCell(rig, 'batch_captured', r.captured.size);
        const allUp = r.captured.size > 0 && r.uploaded.size >= r.captured.size;
        setCell(rig, 'batch_uploaded', r.uploaded.size, allUp ? 'ok' : '');
        const why = missedReason(rig, r);
        if (why === null) return setCell(rig, 'batch_result', 'waiting', 'warn');
        setCell(rig, 'batch_result', why || 'ok', why ? 'bad' : 'ok');
        if (why) rig.row.classList.add('missed');
    }

    function showBatchAll() {
        for (const rig of rigs.values()) showBatch(rig);
        if (!groupBatch) return;
        let answered = 0;
        let photos = 0;
        let uploaded = 0;
        for (const r of groupBatch.rigs.values()) {
            if (r.response) answered++;
            photos += r.captured.size;
            uploaded += r.uploaded.size;
        }
        const at = new Date(groupBatch.captureAt).toLocaleTimeString();
        showGroupStatus(`batch ${groupBatch.id} (group ${groupBatch.group}, at ${at}): ${answered} rig(s) answered, ` +
            `${photos} photo(s), ${uploaded} uploaded`, false);
    }

    function showGroupStatus(text, isError) {
        const s = $('group-status');
        s.textContent = text;
        s.className = isError ? 'error' : 'muted';
    }

    // ---- outgoing ------------------------------------------------------------------------

    function newId() {
        return Date.now().toString(36) + '-' + Math.random().toString(36).slice(2, 6);
    }

    function request(rig, verb, body) {
        publishRequest(`${prefix}/${rig.id}/request/${verb}`, verb, body);
    }

    // False when not connected (the error is shown).
    function publishRequest(topic, verb, body) {
        if (!client || !client.connected) {
            showError('not connected');
            return false;
        }
        if (!body.transaction) body.transaction = 'web-' + newId();
        // Requests are never retained: a retained request would fire again on every reconnect.
        client.publish(topic, JSON.stringify(body), { qos: 1, retain: false }, (err) => {
            if (err) showError(`${verb} request failed: ${err.message}`);
        });
        return true;
    }

    initForm();
})();

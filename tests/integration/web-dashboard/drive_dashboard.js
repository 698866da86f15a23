// Drives the web dashboard (dashboards/web, assembled by build.sh into WEB_DIR) in headless
// Debian chromium through playwright-core, against the real broker's websockets listener and
// the real rig-agent started by web_dashboard_test.cpp. Exits 0 when every check passed.
//
// Environment: WEB_DIR, WS_URL, MQTT_URL (plain listener, for the turntable and the preview),
// BASE (photorig/<rig>), RIG_ID, DASHBOARD_PASSWORD_FILE, AGENT_PASSWORD_FILE,
// SCREENSHOT_DIR, CHROMIUM (default /usr/bin/chromium).
'use strict';

const fs = require('fs');
const http = require('http');
const path = require('path');
const { chromium } = require('playwright-core');
const mqtt = require('mqtt');

const env = (name) => {
    const v = process.env[name];
    if (!v) throw new Error(`${name} is not set`);
    return v;
};
const secret = (file) => fs.readFileSync(file, 'utf8').split('\n')[0];
const log = (...a) => console.log(new Date().toISOString(), ...a);

// A static server for the assembled page, on a free loopback port.
function serve(dir) {
    const types = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css' };
    const server = http.createServer((req, res) => {
        const rel = decodeURIComponent(new URL(req.url, 'http://x').pathname).replace(/^\/+/, '') || 'index.html';
        const file = path.join(dir, rel);
        if (!file.startsWith(dir + path.sep) || !fs.existsSync(file)) {
            res.writeHead(404).end();
            return;
        }
        res.writeHead(200, { 'Content-Type': types[path.extname(file)] || 'application/octet-stream' });
        fs.createReadStream(file).pipe(res);
    });
    return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function waitText(locator, pred, what, timeout = 15000) {
    const deadline = Date.now() + timeout;
    let last = '';
    while (Date.now() < deadline) {
        last = ((await locator.textContent().catch(() => '')) || '').trim();
        if (pred(last)) return last;
        await new Promise((r) => setTimeout(r, 100));
    }
    throw new Error(`timed out waiting for ${what} (last: '${last}')`);
}

function connectMqtt(url, username, password) {
    return new Promise((resolve, reject) => {
        const c = mqtt.connect(url, { username, password, reconnectPeriod: 500 });
        c.once('connect', () => resolve(c));
        c.once('error', reject);
    });
}

// Answers every move like a turntable controller would, after a short travel time.
async function startTurntable(base, password) {
    const c = await connectMqtt(env('MQTT_URL'), 'photorig-dashboard', password);
    c.on('message', (topic, payload) => {
        const move = JSON.parse(payload.toString());
        setTimeout(() => c.publish(`${base}/scan/ready`, JSON.stringify({ scan_id: move.scan_id, step: move.step }),
            { qos: 1 }), 50);
    });
    await c.subscribeAsync(`${base}/scan/move`, { qos: 1 });
    return c;
}

async function main() {
    const base = env('BASE');
    const rigId = env('RIG_ID');
    const shots = env('SCREENSHOT_DIR');
    const dashboardPassword = secret(env('DASHBOARD_PASSWORD_FILE'));
    const server = await serve(path.resolve(env('WEB_DIR')));
    const pageUrl = `http://127.0.0.1:${server.address().port}/`;
    const browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        headless: true,
        // Root has no user namespaces for the sandbox here; the page is our own, on loopback.
        args: ['--no-sandbox', '--disable-gpu'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on('console', (m) => log('page:', m.type(), m.text()));
    page.on('pageerror', (e) => log('page error:', e.message));
    let turntable = null;
    let requester = null;
    try {
        // A password in the URL (it would land in the web server's access log) is refused:
        // not put in the form, not used to connect, taken out of the address bar.
        await page.goto(`${pageUrl}?url=${encodeURIComponent(env('WS_URL'))}&password=not-the-password`);
        await page.waitForTimeout(1000);
        if (page.url().includes('password')) throw new Error(`password left in the address: ${page.url()}`);
        if ((await page.inputValue('#password')) !== '') throw new Error('password prefilled from the URL');
        const urlError = await page.locator('#connection-error').textContent();
        if (!/not accepted/.test(urlError || '')) throw new Error(`no message about the URL password: ${urlError}`);
        if ((await page.locator('#connection-status').textContent()) !== 'disconnected')
            throw new Error('the page tried to connect with a password from the URL');
        log('a password in the URL is refused');

        log('open', pageUrl);
        await page.goto(pageUrl);
        // The password is typed into the form, as a user would; it never goes in a URL here.
        await page.fill('#broker-url', env('WS_URL'));
        await page.fill('#username', 'photorig-dashboard');
        await page.fill('#password', dashboardPassword);
        await page.click('#connect');
        await page.waitForSelector('#connection-status.online', { timeout: 15000 });
        log('connected over websockets');

        const rig = page.locator(`section.rig[data-rig="${rigId}"]`);
        const f = (name) => rig.locator(`[data-field="${name}"]`);
        await rig.waitFor({ timeout: 15000 });
        await waitText(f('availability'), (t) => t === 'online', 'rig availability online');
        await waitText(f('cameras'), (t) => t.includes('SIM0001'), 'camera SIM0001 listed');
        await waitText(f('uploader_availability'), (t) => t === 'online', 'uploader online');
        await waitText(f('queue_depth'), (t) => /^\d+$/.test(t), 'upload queue depth shown');
        if (!(await f('preview_placeholder').isVisible())) throw new Error('no placeholder before any preview');
        log('rig, camera, uploader and preview placeholder shown');

        // Capture: a response appears and the photo count goes up.
        const before = Number(await f('photos_today').textContent()) || 0;
        await rig.locator('[data-action="capture"]').click();
        await rig.locator('ol.responses li[data-verb="capture"][data-status="ok"]').first().waitFor({ timeout: 20000 });
        await waitText(f('photos_today'), (t) => Number(t) === before + 1, `photos today ${before} -> ${before + 1}`);
        await waitText(f('uploaded'), (t) => Number(t) >= 1, 'upload monitor counts the uploaded photo');
        log('capture answered ok; photos today', before, '->', before + 1);

        // The last preview: asked of the agent (the camera's thumbnail of the photo just taken),
        // its retained JPEG bytes become a blob: URL the browser can decode.
        requester = await connectMqtt(env('MQTT_URL'), 'photorig-dashboard', dashboardPassword);
        await requester.publishAsync(`${base}/request/preview`, JSON.stringify({ transaction: 'web-test' }), { qos: 1 });
        await page.waitForFunction((rid) => {
            const img = document.querySelector(`section.rig[data-rig="${rid}"] [data-field="preview"]`);
            return img && !img.hidden && img.src.startsWith('blob:') && img.complete && img.naturalWidth > 0;
        }, rigId, { timeout: 15000 });
        if (await f('preview_placeholder').isVisible()) throw new Error('placeholder still shown beside the preview');
        log('preview decoded from a blob URL');

        // A short scan: the dashboard starts it, a turntable answers the moves, progress completes.
        turntable = await startTurntable(base, dashboardPassword);
        await f('scan_positions').fill('3');
        await f('scan_batch').fill('webscan');
        await rig.locator('[data-action="scan-start"]').click();
        await rig.locator('ol.responses li[data-verb="scan"][data-status="ok"]').first().waitFor({ timeout: 15000 });
        await waitText(f('scan_state'), (t) => t === 'completed', 'scan completed', 60000);
        await waitText(f('scan_step'), (t) => t === '3/3', 'scan step 3/3');
        const progress = await f('scan_progress').evaluate((p) => [p.value, p.max]);
        if (progress[0] !== 3 || progress[1] !== 3) throw new Error(`progress bar at ${progress}`);
        log('scan completed 3/3');

        // Abort with no scan running: the error response is shown too.
        await rig.locator('[data-action="scan-abort"]').click();
        await rig.locator('ol.responses li[data-verb="scan"][data-status="error"]').first().waitFor({ timeout: 15000 });
        const errText = await rig.locator('ol.responses li[data-verb="scan"][data-status="error"]').first().textContent();
        if (!errText.includes('no_scan')) throw new Error(`abort error shown as: ${errText}`);
        log('abort without a scan shows', errText.trim());

        await fleetViewFollowsAGroupCapture(page, base.split('/')[0], rigId, secret(env('AGENT_PASSWORD_FILE')),
            dashboardPassword);

        await hostileTextIsShownAsText(page, base, secret(env('AGENT_PASSWORD_FILE')));

        await page.screenshot({ path: path.join(shots, 'web-dashboard.png'), fullPage: true });
        log('screenshot', path.join(shots, 'web-dashboard.png'));
        console.log('DASHBOARD OK');
    } catch (err) {
        await page.screenshot({ path: path.join(shots, 'web-dashboard-failure.png'), fullPage: true }).catch(() => {});
        const text = await page.locator('body').innerText().catch(() => '');
        throw new Error(`${err.message}\n--- page text ---\n${text}`);
    } finally {
        if (turntable) await turntable.endAsync();
        if (requester) await requester.endAsync();
        await browser.close();
        server.close();
    }
}

// The fleet view (issue 14): four fake rigs' retained state published as photorig-agent (the
// user that may write rig topics) appear as rows with their health; the group capture button
// publishes a group request ~2 s ahead (seen here on the broker); capture, upload and response
// events make the per-rig batch counts, and the rigs that missed photos are marked. The real
// rig (in group `studio`) takes part with its real photo and upload.
async function fleetViewFollowsAGroupCapture(page, prefix, realRig, agentPassword, dashboardPassword) {
    const agent = await connectMqtt(env('MQTT_URL'), 'photorig-agent', agentPassword);
    const watcher = await connectMqtt(env('MQTT_URL'), 'photorig-dashboard', dashboardPassword);
    try {
        const hostileError = '<img src=x onerror="window.__pwned=7">camera stuck';
        const cams = (n, connected) => Array.from({ length: n },
            (_, i) => ({ model: 'Sim', serial: `S${i}`, port: 'ptpip:x', connected: i < connected }));
        const rigs = {
            'fleet-a': { state: { cameras: cams(2, 2), spool_files: 3,
                clock: { synced: true, est_error_us: 250, max_error_us: 900 } }, queue: 0, bridgeTopic: '1' },
            'fleet-b': { state: { cameras: cams(1, 1), spool_files: 0, bridge: { connected: false, since: 1 },
                clock: { synced: false, est_error_us: 1500000, max_error_us: 16000000 } }, queue: 5 },
            // mosquitto's `0` (the central broker's will) wins over a stale state saying connected.
            'fleet-c': { state: { cameras: cams(2, 2), spool_files: 7, last_error: hostileError,
                bridge: { connected: true, since: 1 } }, queue: 1, bridgeTopic: '0' },
            'fleet-d': { state: { cameras: cams(2, 1), spool_files: 1 }, queue: 0, offline: true },
            // A member of the group that never answers nor sends a photo: marked once the page
            // stops waiting (15 s after capture_at).
            'fleet-e': { state: { cameras: cams(1, 1), spool_files: 0, groups: ['studio'] }, queue: 0 },
        };
        const retained = { qos: 1, retain: true };
        for (const [id, r] of Object.entries(rigs)) {
            const base = `${prefix}/${id}`;
            await agent.publishAsync(`${base}/availability`, r.offline ? 'offline' : 'online', retained);
            await agent.publishAsync(`${base}/state`, JSON.stringify(r.state), retained);
            await agent.publishAsync(`${base}/uploader/state`, JSON.stringify({ queue_depth: r.queue }), retained);
            if (r.bridgeTopic) await agent.publishAsync(`${base}/bridge/state`, r.bridgeTopic, retained);
        }
        const want = {
            'fleet-a': { availability: 'online', cameras: '2/2', spool_files: '3', queue_depth: '0', last_error: '–',
                bridge: 'connected', clock: '±250 µs' },
            'fleet-b': { availability: 'online', cameras: '1/1', spool_files: '0', queue_depth: '5', last_error: '–',
                bridge: 'down', clock: 'unsynced ±1500.0 ms' },
            'fleet-c': { availability: 'online', cameras: '2/2', spool_files: '7', queue_depth: '1',
                last_error: hostileError, bridge: 'down', clock: '–' },
            'fleet-d': { availability: 'offline', cameras: '1/2', spool_files: '1', queue_depth: '0', last_error: '–',
                bridge: '–', clock: '–' },
        };
        for (const [id, cols] of Object.entries(want)) {
            for (const [col, text] of Object.entries(cols))
                await waitText(fleetCell(page, id, col), (t) => t === text, `${id} ${col} '${text}'`);
        }
        log('fleet rows show availability, cameras, spool, queue, last error, bridge and clock');

        // Group capture: the request reaches the broker with capture_at about 2 s ahead.
        await watcher.subscribeAsync(`${prefix}/group/+/request/capture`, { qos: 1 });
        const seen = new Promise((resolve) => watcher.once('message', (topic, payload) =>
            resolve({ topic, body: JSON.parse(payload.toString()), at: Date.now() })));
        await page.fill('#group-name', 'studio');
        const clicked = Date.now();
        await page.click('#group-capture');
        const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no group request')), 10000));
        const req = await Promise.race([seen, timeout]);
        const ahead = req.body.capture_at - clicked;
        if (req.topic !== `${prefix}/group/studio/request/capture`) throw new Error(`group request on ${req.topic}`);
        const { batch, transaction } = req.body;
        if (req.body.camera !== 'all' || typeof batch !== 'string' || !/^web-/.test(transaction || ''))
            throw new Error(`group request ${JSON.stringify(req.body)}`);
        // The page computes now + 2000 between the click and the request's arrival here.
        const aheadOfArrival = req.body.capture_at - req.at;
        if (ahead < 1990 || aheadOfArrival > 2050 || aheadOfArrival < 1000)
            throw new Error(`capture_at ${ahead} ms after the click, ${aheadOfArrival} ms after arrival: not now + 2 s`);
        log('group request', JSON.stringify(req.body), `capture_at ${aheadOfArrival} ms after it arrived`);

        // The fake rigs answer: a and b photograph and upload everything (a duplicate `done`,
        // a `progress` and another batch's photo must not count), c answers an error, d takes
        // one photo of two cameras.
        const send = (id, sub, body) => agent.publishAsync(`${prefix}/${id}/${sub}`, JSON.stringify(body), { qos: 1 });
        const photo = (id, n, otherBatch) =>
            send(id, 'capture', { capture_id: `${id}-${n}`, rig_id: id, batch: otherBatch || batch, seq: 1 });
        const upload = (id, n, type) => send(id, 'upload/events',
            { type: type || 'done', job_id: `j-${id}-${n}`, capture_id: `${id}-${n}`, batch });
        const respond = (id, r) => send(id, 'response/capture', { transaction, ...r });
        await photo('fleet-a', 1);
        await photo('fleet-a', 2);
        await photo('fleet-a', 3, 'some-other-batch');
        await respond('fleet-a', { status: 'ok', data: { batch, count: 2 } });
        await upload('fleet-a', 1, 'progress');
        await upload('fleet-a', 1);
        await upload('fleet-a', 2);
        await upload('fleet-a', 2);
        await photo('fleet-b', 1);
        await respond('fleet-b', { status: 'ok', data: { batch, count: 1 } });
        await upload('fleet-b', 1);
        const hostileMessage = '<img src=x onerror="window.__pwned=8">';
        await respond('fleet-c', { status: 'error', error: { code: 'camera_error', message: hostileMessage } });
        await photo('fleet-d', 1);
        await respond('fleet-d', { status: 'ok', data: { batch, count: 1 } });

        const counts = {
            'fleet-a': ['2', '2', 'ok'], 'fleet-b': ['1', '1', 'ok'], 'fleet-c': ['0', '0', null],
            'fleet-d': ['1', '0', '1 of 2 photos'], [realRig]: ['1', '1', 'ok'],
        };
        for (const [id, [captured, uploaded, result]] of Object.entries(counts)) {
            const cellIs = (col, text) =>
                waitText(fleetCell(page, id, col), (t) => t === text, `${id} ${col} '${text}'`, 20000);
            await cellIs('batch_captured', captured);
            await cellIs('batch_uploaded', uploaded);
            await cellIs('batch_result', result || `camera_error: ${hostileMessage}`);
        }
        // The silent member waits first, then is marked; rigs outside the group show nothing.
        await waitText(fleetCell(page, 'fleet-e', 'batch_result'), (t) => t === 'waiting', 'fleet-e waiting');
        await waitText(fleetCell(page, 'fleet-e', 'batch_result'), (t) => t === 'no response',
            'fleet-e no response', 30000);
        const missed = await page.evaluate(() =>
            [...document.querySelectorAll('#fleet-rows tr.missed')].map((r) => r.dataset.rig).sort());
        if (JSON.stringify(missed) !== JSON.stringify(['fleet-c', 'fleet-d', 'fleet-e']))
            throw new Error(`rows marked as missing photos: ${JSON.stringify(missed)}`);
        const status = await page.locator('#group-status').textContent();
        if (!status.includes(batch) || !status.includes('5 rig(s) answered'))
            throw new Error(`group status: ${status}`);
        const verdict = await page.evaluate(() => ({
            pwned: window.__pwned === undefined ? null : window.__pwned,
            injected: document.querySelectorAll('#fleet-table img, #fleet-table svg, #fleet-table script').length,
        }));
        if (verdict.pwned !== null || verdict.injected)
            throw new Error(`fleet view ran rig text: ${JSON.stringify(verdict)}`);
        log('batch counts per rig shown, fleet-c, fleet-d and the silent member fleet-e marked as missing photos, rig text shown as text');
        const shot = path.join(env('SCREENSHOT_DIR'), 'web-dashboard-fleet.png');
        await page.screenshot({ path: shot, fullPage: true });
    } finally {
        await agent.endAsync();
        await watcher.endAsync();
    }
}

function fleetCell(page, rigId, col) {
    return page.locator(`#fleet-rows tr[data-rig="${rigId}"] [data-col="${col}"]`);
}

// MQTT text is never HTML (issue 15): markup in a rig id, a camera model, a batch name, an
// uploader error and a response is shown literally, and none of it runs. The payloads are
// published as photorig-agent (the only user that may write state) for a second rig.
async function hostileTextIsShownAsText(page, base, agentPassword) {
    const dialogs = [];
    page.on('dialog', (d) => {
        dialogs.push(d.message());
        d.dismiss().catch(() => {});
    });
    const csp = await page.evaluate(() => {
        const m = document.querySelector('meta[http-equiv="Content-Security-Policy"]');
        return m ? m.content : '';
    });
    for (const want of ["default-src 'self'", "script-src 'self'", 'connect-src', "object-src 'none'"]) {
        if (!csp.includes(want)) throw new Error(`Content-Security-Policy lacks ${want}: '${csp}'`);
    }
    // The policy is in force: an inline script added to the page does not run.
    await page.evaluate(() => {
        const s = document.createElement('script');
        s.textContent = 'window.__inline = 1;';
        document.body.appendChild(s);
    });

    const prefix = base.split('/')[0];
    const rigId = '<svg onload=window.__pwned=3>';
    const model = '<img src=x onerror="window.__pwned=1;alert(1)">';
    const batch = '<img src=x onerror="window.__pwned=2"><script>window.__pwned=2</script>';
    const uploadError = '<b onmouseover="window.__pwned=4">upload failed</b>';
    const errMessage = '<iframe src="javascript:window.top.__pwned=5"></iframe>';
    const lastError = '<img src=x onerror="window.__pwned=6">stuck';
    const agent = await connectMqtt(env('MQTT_URL'), 'photorig-agent', agentPassword);
    const hostileBase = `${prefix}/${rigId}`;
    await agent.publishAsync(`${hostileBase}/state`, JSON.stringify({
        cameras: [{ model, serial: batch, port: 'ptpip:<i>x</i>', connected: true }],
        photos_today: 1, version: '<u>1</u>', last_error: lastError,
    }), { qos: 1 });
    await agent.publishAsync(`${hostileBase}/scan/state`, JSON.stringify({
        state: 'running', scan_id: 's1', step: 1, of: 2, batch, error: { code: 'x', message: errMessage },
    }), { qos: 1 });
    await agent.publishAsync(`${hostileBase}/uploader/state`, JSON.stringify({ last_error: uploadError, queue_depth: 0 }),
        { qos: 1 });
    await agent.publishAsync(`${hostileBase}/response/capture`, JSON.stringify({
        transaction: batch, status: 'error', error: { code: 'camera_error', message: errMessage },
    }), { qos: 1 });
    await agent.endAsync();

    const shown = await page.waitForFunction(({ rid, want }) => {
        const sec = [...document.querySelectorAll('section.rig')].find((s) => s.dataset.rig === rid);
        if (!sec) return false;
        const text = sec.textContent;
        return want.every((w) => text.includes(w)) ? true : false;
    }, { rid: rigId, want: [rigId, model, batch, uploadError, errMessage] }, { timeout: 15000 });
    if (!shown) throw new Error('hostile text not shown');
    await new Promise((r) => setTimeout(r, 1000));  // an image error handler would have fired by now
    const verdict = await page.evaluate((rid) => {
        const sec = [...document.querySelectorAll('section.rig')].find((s) => s.dataset.rig === rid);
        return {
            pwned: window.__pwned === undefined ? null : window.__pwned,
            inline: window.__inline === undefined ? null : window.__inline,
            injected: sec.querySelectorAll('img:not([data-field="preview"]), svg, script, iframe, b, i, u').length,
            rigIdShown: sec.querySelector('[data-field="rig_id"]').textContent,
            // The fleet table's row for the rig: its id and last error as text, no element made.
            row: [...document.querySelectorAll('#fleet-rows tr')].filter((r) => r.dataset.rig === rid)
                .map((r) => [r.querySelector('[data-col="rig_id"]').textContent,
                    r.querySelector('[data-col="last_error"]').textContent])[0] || null,
            rowInjected: document.querySelectorAll('#fleet-table img, #fleet-table svg, #fleet-table script, ' +
                '#fleet-table iframe, #fleet-table b, #fleet-table i, #fleet-table u').length,
        };
    }, rigId);
    if (verdict.pwned !== null) throw new Error(`hostile text ran as script: window.__pwned=${verdict.pwned}`);
    if (verdict.inline !== null) throw new Error('an inline script ran: the Content-Security-Policy is not in force');
    if (verdict.injected !== 0) throw new Error(`${verdict.injected} element(s) built from MQTT text`);
    if (verdict.rigIdShown !== rigId) throw new Error(`rig id shown as '${verdict.rigIdShown}'`);
    if (!verdict.row || verdict.row[0] !== rigId || verdict.row[1] !== lastError)
        throw new Error(`fleet row shows ${JSON.stringify(verdict.row)}`);
    if (verdict.rowInjected !== 0)
        throw new Error(`${verdict.rowInjected} element(s) in the fleet table built from MQTT text`);
    if (dialogs.length) throw new Error(`dialogs opened: ${dialogs.join(', ')}`);
    log('hostile markup shown as text, nothing ran, CSP in force');
}

main().catch((err) => {
    console.error('DASHBOARD FAILED:', err.message);
    process.exit(1);
});

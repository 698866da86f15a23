// Opens photorig's Node-RED Dashboard 2.0 page in headless Debian chromium (playwright-core),
// checks the scan and upload widgets, clicks Capture and waits for the agent's answer and the
// upload monitor to move. Exits 0 when every check passed.
//
// Environment: DASHBOARD_URL (Node-RED's /dashboard/photorig), SCREENSHOT_DIR,
// CHROMIUM (default /usr/bin/chromium).
'use strict';

const path = require('path');
const { chromium } = require('playwright-core');

const log = (...a) => console.log(new Date().toISOString(), ...a);

async function main() {
    const shots = process.env.SCREENSHOT_DIR;
    const browser = await chromium.launch({
        executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
        headless: true,
        // Root has no user namespaces for the sandbox here; the page is Node-RED's, on loopback.
        args: ['--no-sandbox', '--disable-gpu'],
    });
    const page = await browser.newPage({ viewport: { width: 1280, height: 800 } });
    page.on('pageerror', (e) => log('page error:', e.message));
    const widget = (cls) => page.locator(`.${cls}`).first();
    const waitText = async (cls, pred, what, timeout = 20000) => {
        const deadline = Date.now() + timeout;
        let last = '';
        while (Date.now() < deadline) {
            last = ((await widget(cls).textContent().catch(() => '')) || '').replace(/\s+/g, ' ').trim();
            if (pred(last)) return last;
            await new Promise((r) => setTimeout(r, 100));
        }
        throw new Error(`timed out waiting for ${what} (last: '${last}')`);
    };
    try {
        log('open', process.env.DASHBOARD_URL);
        await page.goto(process.env.DASHBOARD_URL);
        await page.getByRole('button', { name: /Capture/ }).waitFor({ timeout: 30000 });
        log('dashboard page loaded');
        // Retained topics reach the widgets without any click: the scan the test ran before.
        await waitText('photorig-scan-state', (t) => t.includes('completed 2/2'), 'scan state completed 2/2');
        await waitText('photorig-upload-queue', (t) => /queue\s*\d+$/.test(t), 'upload queue depth');
        log('scan and upload widgets filled from retained state');

        await page.getByRole('button', { name: /Capture/ }).click();
        await waitText('photorig-last-capture', (t) => t.includes('ok: 1 photo(s)'), 'capture answered ok');
        await waitText('photorig-photos-today', (t) => /today\s*3$/.test(t), 'photos today 3');
        // 2 scan photos + 1 manifest + 1 captured photo uploaded.
        await waitText('photorig-uploaded', (t) => /Uploaded\s*4$/.test(t), 'uploaded 4');
        await waitText('photorig-upload-event', (t) => t.includes('done'), 'last upload event done');
        log('capture answered, photo uploaded');
        await page.screenshot({ path: path.join(shots, 'node-red-dashboard.png'), fullPage: true });
        console.log('NODE-RED DASHBOARD OK');
    } catch (err) {
        await page.screenshot({ path: path.join(shots, 'node-red-dashboard-failure.png'), fullPage: true }).catch(() => {});
        const text = await page.locator('body').innerText().catch(() => '');
        throw new Error(`${err.message}\n--- page text ---\n${text}`);
    } finally {
        await browser.close();
    }
}

main().catch((err) => {
    console.error('NODE-RED DASHBOARD FAILED:', err.message);
    process.exit(1);
});

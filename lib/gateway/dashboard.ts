// The /dashboard page: a live view of the gateway and the bus, served by the gateway
// itself (no build step, no external assets). It reads /stats once a second and
// opens a WebSocket to /ws to show events as they pass. The metrics issue grows it.
export function dashboardPage(): string {
  return PAGE;
}

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>myelin dashboard</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:14px system-ui,sans-serif;margin:2rem;color:#222}
h1{font-size:1.3rem}table{border-collapse:collapse}td{padding:2px 12px 2px 0}
td.v{text-align:right;font-variant-numeric:tabular-nums}#events{font:12px monospace;white-space:pre;max-height:40vh;overflow:auto;background:#f6f6f6;padding:8px}
</style></head><body>
<h1>myelin</h1>
<p>WebSocket: <span id="ws-state">connecting</span></p>
<table id="stats"></table>
<h2>Events</h2><div id="events"></div>
<script>
const token = new URLSearchParams(location.search).get('token');
const auth = token ? { headers: { authorization: 'Bearer ' + token } } : {};
async function refresh() {
  try {
    const r = await fetch('/stats', auth);
    const s = await r.json();
    const rows = Object.entries(s.gateway).filter(([, v]) => typeof v === 'number')
      .concat(Object.entries(s.bus).filter(([, v]) => typeof v === 'number').map(([k, v]) => ['bus.' + k, v]));
    document.getElementById('stats').innerHTML = rows.map(([k, v]) => '<tr><td>' + k + '</td><td class="v">' + v + '</td></tr>').join('');
  } catch (e) {}
}
setInterval(refresh, 1000); refresh();
const ws = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') + location.host + '/ws' + (token ? '?token=' + encodeURIComponent(token) : ''));
ws.onopen = () => { document.getElementById('ws-state').textContent = 'open'; ws.send(JSON.stringify({ op: 'sub', id: 'dash', subject: '>' })); };
ws.onclose = () => { document.getElementById('ws-state').textContent = 'closed'; };
ws.onmessage = (m) => {
  const el = document.getElementById('events');
  el.textContent = (m.data + '\\n' + el.textContent).slice(0, 20000);
};
window.myelinSocket = ws;
</script></body></html>`;

// A Node `ws` client: opens URL, sends N text messages (one per echo), then closes 1000.
// Usage: node ws_client.js URL '{"messages": 1, "origin": null, "protocols": [],
//                                "protocolVersion": 13, "holdMs": 0}'
// Node's ws sends no Origin unless told to (the motivating case's client).
const WebSocket = require("ws");

const [url, json] = process.argv.slice(2);
const o = Object.assign({ messages: 1, origin: null, protocols: [], protocolVersion: 13,
                          holdMs: 0 }, JSON.parse(json || "{}"));
const opts = { protocolVersion: o.protocolVersion };
if (o.origin) opts.origin = o.origin;
const ws = new WebSocket(url, o.protocols, opts);
let sent = 0;
const next = () => {
  if (sent < o.messages) ws.send(JSON.stringify({ type: "chat", text: `hello ${sent++}` }));
  else setTimeout(() => ws.close(1000, "done"), o.holdMs);
};
ws.on("open", next);
ws.on("message", next);
ws.on("unexpected-response", (req, res) => { console.log(`http ${res.statusCode}`); req.destroy(); });
ws.on("error", (e) => console.log(`error ${e.message}`));
ws.on("close", (code, reason) => console.log(`close ${code} ${reason}`));

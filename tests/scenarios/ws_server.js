// A Node `ws` echo server on 127.0.0.1:PORT; prints "ready" once listening.
// Usage: node ws_server.js PORT '{"autoPong": false, "selectNoProtocol": true}'
// Options go to WebSocketServer (autoPong: false: a server that never answers pings), but
// selectNoProtocol: accept the upgrade without choosing any offered subprotocol.
const { WebSocketServer } = require("ws");

const [port, json] = process.argv.slice(2);
const { selectNoProtocol, ...options } = JSON.parse(json || "{}");
if (selectNoProtocol) options.handleProtocols = () => false;
const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(port), ...options });
wss.on("connection", (ws) =>
  ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })));
wss.on("listening", () => console.log("ready"));

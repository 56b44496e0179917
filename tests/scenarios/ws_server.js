// A Node `ws` server on 127.0.0.1:PORT. Usage: node ws_server.js PORT '{"autoPong": true}'
// Options go to WebSocketServer (autoPong: false makes a server that never answers pings).
// It echoes messages and prints "ready" once listening.
const { WebSocketServer } = require("ws");

const [port, json] = process.argv.slice(2);
const wss = new WebSocketServer({ host: "127.0.0.1", port: Number(port), ...JSON.parse(json || "{}") });
wss.on("connection", (ws) => ws.on("message", (data, isBinary) => ws.send(data, { binary: isBinary })));
wss.on("listening", () => console.log("ready"));

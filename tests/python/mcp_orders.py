"""A small MCP server written for the tool tests: order status and coupons.

It speaks MCP's JSON-RPC by hand (no SDK), so the gateway's client is tested against an
independent implementation:

    python3 mcp_orders.py            # stdio: one JSON message per line
    python3 mcp_orders.py --http     # streamable HTTP on 127.0.0.1, port printed on stdout

Tools: `order_status` (read-only hint), `issue_coupon` (no hint), `wipe_orders`
(destructive hint), `slow_lookup` (read-only hint: answers after `seconds`, or stops early
when the client cancels it). Calls are logged to the file named by MCP_ORDERS_LOG, if set,
each with its JSON-RPC id and how many calls were running when it started; so are the
client's `notifications/cancelled` and the calls they stopped, each with its MCP session
(JSON-RPC ids are only unique within one). With MCP_ORDERS_TOKEN set,
the HTTP server answers 401 to requests without `Authorization: Bearer <token>`.
"""

import json
import os
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

TOOLS = [
    {
        "name": "order_status",
        "description": "The status of an order",
        "inputSchema": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
        "annotations": {"readOnlyHint": True},
    },
    {
        "name": "issue_coupon",
        "description": "Issue a discount coupon to a customer",
        "inputSchema": {
            "type": "object",
            "properties": {"percent": {"type": "integer"}},
            "required": ["percent"],
        },
    },
    {
        "name": "wipe_orders",
        "description": "Delete every order",
        "inputSchema": {"type": "object", "properties": {}},
        "annotations": {"destructiveHint": True},
    },
    {
        "name": "slow_lookup",
        "description": "A lookup that takes a while",
        "inputSchema": {
            "type": "object",
            "properties": {"seconds": {"type": "number"}},
        },
        "annotations": {"readOnlyHint": True},
    },
]

# Calls running now, each running call's stop signal by (session, JSON-RPC id), and the
# sessions opened over HTTP.
LOCK = threading.Lock()
RUNNING = {"count": 0, "sessions": 0}
STOPS = {}


SUPPORTED = ["2025-06-18", "2025-03-26"]


def log(entry):
    path = os.environ.get("MCP_ORDERS_LOG")
    if path:
        with LOCK, open(path, "a") as f:
            f.write(json.dumps(entry) + "\n")


def call(name, args, rid, session):
    with LOCK:
        RUNNING["count"] += 1
        running = RUNNING["count"]
        stop = STOPS[(session, rid)] = threading.Event()
    try:
        log({"tool": name, "arguments": args, "session": session, "id": rid, "running": running})
        return answer(name, args, stop)
    finally:
        with LOCK:
            RUNNING["count"] -= 1
            STOPS.pop((session, rid), None)


def answer(name, args, stop):
    if name == "order_status":
        order = str(args.get("order_id", ""))
        status = {"42": "shipped", "7": "processing"}.get(order)
        if status is None:
            return {"content": [{"type": "text", "text": f"no order {order}"}], "isError": True}
        return {"content": [{"type": "text", "text": json.dumps({"order_id": order, "status": status, "carrier": "DHL"})}]}
    if name == "issue_coupon":
        return {"content": [{"type": "text", "text": json.dumps({"coupon": "SAVE%d" % int(args.get("percent", 0))})}]}
    if name == "wipe_orders":
        return {"content": [{"type": "text", "text": "wiped"}]}
    if name == "slow_lookup":
        if stop.wait(float(args.get("seconds", 1.0))):
            log({"stopped": True, "arguments": args})
        return {"content": [{"type": "text", "text": json.dumps({"found": "slowly"})}]}
    raise KeyError(name)


def cancelled(params, session):
    """A client's notifications/cancelled: logged, and the call it names stopped."""
    rid = params.get("requestId")
    log({"cancelled": rid, "session": session, "reason": params.get("reason")})
    with LOCK:
        stop = STOPS.get((session, rid))
    if stop is not None:
        stop.set()


def handle(msg, session="stdio"):
    """The response to one JSON-RPC message, or None for notifications."""
    method, params = msg.get("method"), msg.get("params") or {}
    if "id" not in msg:
        if method == "notifications/cancelled":
            cancelled(params, session)
        return None
    rid = msg["id"]
    if method == "initialize":
        result = {
            # Answer the client's version if we speak it, else ours (the spec's negotiation).
            "protocolVersion": params.get("protocolVersion") if params.get("protocolVersion") in SUPPORTED else SUPPORTED[0],
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "mcp-orders", "version": "1.0.0"},
        }
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": TOOLS}
    elif method == "tools/call":
        try:
            result = call(params.get("name"), params.get("arguments") or {}, rid, session)
        except KeyError:
            return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32602, "message": "unknown tool"}}
    else:
        return {"jsonrpc": "2.0", "id": rid, "error": {"code": -32601, "message": f"no method {method}"}}
    return {"jsonrpc": "2.0", "id": rid, "result": result}


def stdio():
    for line in sys.stdin:
        line = line.strip()
        if not line:
            continue
        reply = handle(json.loads(line))
        if reply is not None:
            sys.stdout.write(json.dumps(reply) + "\n")
            sys.stdout.flush()


class Http(BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        token = os.environ.get("MCP_ORDERS_TOKEN")
        if token and self.headers.get("authorization") != f"Bearer {token}":
            self.send_response(401)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        msg = json.loads(body)
        if msg.get("method") == "initialize":
            with LOCK:
                RUNNING["sessions"] += 1
                session = "session-%d" % RUNNING["sessions"]
        else:
            session = self.headers.get("mcp-session-id", "")
        reply = handle(msg, session)
        if reply is None:
            self.send_response(202)
            self.send_header("content-length", "0")
            self.end_headers()
            return
        data = json.dumps(reply).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        if msg.get("method") == "initialize":
            self.send_header("mcp-session-id", session)
        try:
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):
            pass  # a cancelled call's request: the client stopped waiting for the answer

    def do_GET(self):
        # No server-initiated stream.
        self.send_response(405)
        self.send_header("content-length", "0")
        self.end_headers()

    def do_DELETE(self):
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()


class Server(ThreadingHTTPServer):
    # Many calls connect at once (the gateway runs them side by side): socketserver's
    # default backlog of 5 would make the rest wait a second for a SYN retry.
    request_queue_size = 128
    daemon_threads = True


def http():
    server = Server(("127.0.0.1", 0), Http)
    print(server.server_address[1], flush=True)
    server.serve_forever()


if __name__ == "__main__":
    http() if "--http" in sys.argv else stdio()

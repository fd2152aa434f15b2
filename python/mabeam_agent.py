"""MABEAM port-agent SDK for Python (standard library only).

A port agent is an external process that the MABEAM node runs as an agent;
it talks to the node with one JSON object per line on stdin/stdout (see
docs/port-protocol.md). This module hides the protocol: subclass Agent,
override the callbacks you need, and call run(MyAgent()).

    from mabeam_agent import Agent, run

    class Echo(Agent):
        def handle(self, ctx, msg):
            ctx.reply(msg, msg.data)

    run(Echo())

Anything written to stderr ends up in the node's log. An exception raised by
a callback is reported to the node as an error, which crashes the agent (its
supervisor then decides whether to restart it).
"""

import base64
import json
import sys

__all__ = ["Agent", "Context", "Message", "run", "objective"]


class Message:
    """A message delivered to the agent.

    kind is "message", "timer", "down", "exit" or "undelivered"; sender is
    the sending agent's id (hex string); tag a small integer; data is a str
    when the bytes were UTF-8 text, else bytes.
    """

    __slots__ = ("kind", "sender", "tag", "data")

    def __init__(self, kind, sender, tag, data):
        self.kind = kind
        self.sender = sender
        self.tag = tag
        self.data = data

    def __repr__(self):
        return "Message(%r, %r, %r, %r)" % (self.kind, self.sender, self.tag, self.data)


class Context:
    """What a callback may do. self_id is this agent's id (hex string)."""

    def __init__(self, out):
        self._out = out
        self.self_id = None
        self._next_ref = 0

    def _write(self, obj):
        self._out.write(json.dumps(obj, separators=(",", ":")) + "\n")
        self._out.flush()

    def send(self, to, data, tag=0):
        """Send data (str or bytes) to agent `to` (hex id string)."""
        obj = {"type": "send", "to": to, "tag": int(tag)}
        if isinstance(data, bytes):
            obj["data_b64"] = base64.b64encode(data).decode("ascii")
        else:
            obj["data"] = str(data)
        self._write(obj)

    def reply(self, msg, data, tag=None):
        """Send data back to the sender of msg (same tag unless given)."""
        self.send(msg.sender, data, msg.tag if tag is None else tag)

    def log(self, text, level="info"):
        """Write to the node log; level is debug, info, warn or error."""
        self._write({"type": "log", "level": level, "msg": str(text)})

    def checkpoint(self, blob):
        """Save state (bytes or str) for restarts: a restarted agent gets it
        back in init(checkpoint=...)."""
        if isinstance(blob, str):
            blob = blob.encode("utf-8")
        self._write({"type": "checkpoint", "data": base64.b64encode(blob).decode("ascii")})

    def set(self, name, value):
        """Set a shared variable (number, bool, str or list of numbers)."""
        self._write({"type": "set", "name": name, "value": value})

    def vote(self, proposal, accept):
        """Vote on a proposal (its integer id)."""
        self._write({"type": "vote", "proposal": int(proposal), "accept": bool(accept)})

    def propose(self, name, value):
        """Propose a value for a consensus variable (docs/proposals.md).
        Returns this agent's reference number for the request: the node's
        answer comes to Agent.proposed with the same number, and the
        outcome, if accepted, as a change of the variable."""
        self._next_ref += 1
        self._write({"type": "propose", "name": name, "value": value, "ref": self._next_ref})
        return self._next_ref

    def stop(self):
        """End this agent normally."""
        self._write({"type": "stop"})


class Agent:
    """Base class: override the callbacks you need."""

    def init(self, ctx, config, checkpoint):
        """Called once at start. config is the str from the spawn config;
        checkpoint is the bytes last saved with ctx.checkpoint, or None."""

    def handle(self, ctx, msg):
        """Called for every Message."""

    def variable(self, ctx, name, value, version):
        """A watched variable changed."""

    def vote(self, ctx, proposal, variable, value):
        """Return True/False to vote now, or None and call ctx.vote later."""
        return None

    def proposed(self, ctx, ref, proposal, error):
        """The node's answer to ctx.propose (ref is what it returned):
        proposal is the proposal's integer id, or None with error a dict
        {"error": "MB_...", "msg": "..."} saying why there is none."""

    def terminate(self, ctx):
        """Called when the node asks the agent to stop."""


def _data(obj):
    if "data_b64" in obj:
        return base64.b64decode(obj["data_b64"])
    return obj.get("data", "")


def run(agent, stdin=None, stdout=None):
    """Serve the protocol until the node says stop or closes stdin."""
    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    ctx = Context(stdout)
    for line in stdin:
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
            kind = obj.get("type")
            if kind == "init":
                ctx.self_id = obj.get("id")
                ckpt = obj.get("checkpoint")
                agent.init(ctx, obj.get("config", ""),
                           base64.b64decode(ckpt) if ckpt is not None else None)
                ctx._write({"type": "ready"})
            elif kind in ("message", "timer", "down", "exit", "undelivered"):
                agent.handle(ctx, Message(kind, obj.get("from"), obj.get("tag", 0), _data(obj)))
            elif kind == "variable":
                agent.variable(ctx, obj["name"], obj.get("value"), obj.get("version", 0))
            elif kind == "vote":
                answer = agent.vote(ctx, obj["proposal"], obj.get("variable"), obj.get("value"))
                if answer is not None:
                    ctx.vote(obj["proposal"], answer)
            elif kind == "proposed":
                err = None if "proposal" in obj else {"error": obj.get("error"),
                                                      "msg": obj.get("msg")}
                agent.proposed(ctx, obj.get("ref", 0), obj.get("proposal"), err)
            elif kind == "stop":
                agent.terminate(ctx)
                return 0
        except Exception as e:  # a failing callback is an agent crash
            try:
                ctx._write({"type": "error", "msg": "%s: %s" % (type(e).__name__, e)})
            finally:
                sys.exit(1)
    return 0


def objective(fn, stdin=None, stdout=None):
    """Run `fn` as the objective of a study trial (docs/studies.md).

    The evaluator starts the script once per trial and writes
    {"study": id, "trial": n, "params": {name: value, ...}} on stdin.
    fn(params, report) returns the objective value (a finite float);
    report(step, value) records an intermediate value (steps increase).
    An exception, or a value that is not a finite number, fails the trial
    with the error kept (the traceback goes to stderr, whose tail is kept
    too). Returns the process exit status.
    """
    import math
    import traceback

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    line = stdin.readline()
    try:
        trial = json.loads(line)
        params = trial["params"]
    except (ValueError, KeyError, TypeError) as e:
        print("bad trial input: %s" % e, file=sys.stderr, flush=True)
        return 2

    def report(step, value):
        stdout.write(json.dumps({"report": float(value), "step": int(step)}) + "\n")
        stdout.flush()

    try:
        value = float(fn(params, report))
    except Exception:
        traceback.print_exc(file=sys.stderr)
        sys.stderr.flush()
        return 1
    if not math.isfinite(value):
        print("objective returned %r" % value, file=sys.stderr, flush=True)
        return 1
    stdout.write(repr(value) + "\n")
    stdout.flush()
    return 0

#!/usr/bin/env python3
"""Counter port agent: counts "inc" messages, checkpoints after each one,
answers "get" with the count, and crashes on "crash" (to show supervision:
a restarted counter resumes from its checkpoint)."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mabeam_agent import Agent, run  # noqa: E402


class Counter(Agent):
    def init(self, ctx, config, checkpoint):
        self.count = int(checkpoint) if checkpoint else int(config or 0)
        print("counter starting at %d" % self.count, file=sys.stderr, flush=True)

    def handle(self, ctx, msg):
        if msg.data == "inc":
            self.count += 1
            ctx.checkpoint(str(self.count))
        elif msg.data == "get":
            ctx.reply(msg, str(self.count))
        elif msg.data == "crash":
            raise RuntimeError("asked to crash")

    def vote(self, ctx, proposal, variable, value):
        return isinstance(value, (int, float)) and value < 1.0


if __name__ == "__main__":
    sys.exit(run(Counter()))

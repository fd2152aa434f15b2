#!/usr/bin/env python3
"""Echo port agent: sends every message back to its sender."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mabeam_agent import Agent, run  # noqa: E402


class Echo(Agent):
    def handle(self, ctx, msg):
        if msg.kind == "message":
            ctx.reply(msg, msg.data)


if __name__ == "__main__":
    sys.exit(run(Echo()))

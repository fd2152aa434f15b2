#!/usr/bin/env python3
"""Proposer port agent: a message "NAME VALUE" (for example "lr 0.01")
proposes VALUE for the consensus variable NAME, and the node's answer goes
back to the sender as "proposed ID" or "refused MB_... message". Whether
the proposal wins is decided by the voters; the variable's watchers see
the outcome."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from mabeam_agent import Agent, run  # noqa: E402


class Proposer(Agent):
    def init(self, ctx, config, checkpoint):
        self.asked = {}  # ref -> the message that asked

    def handle(self, ctx, msg):
        if msg.kind != "message" or not isinstance(msg.data, str):
            return
        name, _, value = msg.data.partition(" ")
        try:
            number = float(value)
        except ValueError:
            ctx.reply(msg, "usage: NAME VALUE (a number)")
            return
        self.asked[ctx.propose(name, number)] = msg

    def proposed(self, ctx, ref, proposal, error):
        msg = self.asked.pop(ref, None)
        if msg is None:
            return
        if error is None:
            ctx.reply(msg, "proposed %d" % proposal)
        else:
            ctx.reply(msg, "refused %s %s" % (error["error"], error["msg"]))


if __name__ == "__main__":
    sys.exit(run(Proposer()))

"""A port agent (python/mabeam_agent.py) that proposes: a message "NAME
VALUE" proposes VALUE (a number) for NAME with ctx.propose. It keeps a log,
saved as its checkpoint after each line so that the test can read it
(GET /v1/agents/ID/checkpoint):
    asked REF NAME VALUE        a proposal sent to the node
    proposed REF ID             the node's answer: the proposal's id
    refused REF MB_CODE         the node's answer: no proposal, and why
    notice TAG JSON             a notice from the node (mabeam/proposal.h)
The agent-propose integration test's port proposer."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "python"))
import mabeam_agent  # noqa: E402

NOTICES = (0x4D500001, 0x4D500002, 0x4D500003)  # opened, refused, decided


class Proposer(mabeam_agent.Agent):
    def init(self, ctx, config, checkpoint):
        self.lines = []

    def note(self, ctx, line):
        self.lines.append(line)
        ctx.checkpoint("".join(x + "\n" for x in self.lines))

    def handle(self, ctx, msg):
        if msg.tag in NOTICES:
            self.note(ctx, "notice %x %s" % (msg.tag, msg.data))
            return
        name, _, value = str(msg.data).partition(" ")
        ref = ctx.propose(name, float(value))
        self.note(ctx, "asked %d %s %s" % (ref, name, value))

    def proposed(self, ctx, ref, proposal, error):
        if error is None:
            self.note(ctx, "proposed %d %d" % (ref, proposal))
        else:
            self.note(ctx, "refused %d %s" % (ref, error["error"]))


if __name__ == "__main__":
    sys.exit(mabeam_agent.run(Proposer()))

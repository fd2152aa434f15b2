"""A port agent (python/mabeam_agent.py) that votes yes on values <= 50:
the proposals integration test's port voter."""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                "python"))
import mabeam_agent  # noqa: E402


class Voter(mabeam_agent.Agent):
    def vote(self, ctx, proposal, variable, value):
        return isinstance(value, (int, float)) and value <= 50


if __name__ == "__main__":
    sys.exit(mabeam_agent.run(Voter()))

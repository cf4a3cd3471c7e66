"""``python -m autolabel.testing --latency 0.2``: run the fake OpenAI server (see openai_server)."""

from autolabel.testing.openai_server import main

main()

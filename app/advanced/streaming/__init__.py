"""Streaming intermediate results, in three parts: the agent (agent.py, the lesson), the run's
topic that readers follow (topic.py), and the text's way from the model to the topic (text.py)."""

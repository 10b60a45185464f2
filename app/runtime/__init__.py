"""The machinery behind the tour: serving, the input contract, the LLM client, every agent run's
answer to a misbehaving model, logs, recovery, tracing. A tour file never has to read it.

It never imports a tour or beyond-the-tour module; the endpoint (app/__main__.py) installs it.
"""

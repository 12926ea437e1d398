"""The offline demo: a loopback CMS, a webhook receiver, the demo hub's files and the story.

``spokehub demo`` runs ``scenario.run_demo``. The servers are real HTTP servers on 127.0.0.1
(port chosen by the OS) and are also what the tests use.
"""

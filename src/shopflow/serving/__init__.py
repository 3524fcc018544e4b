"""The HTTP service: app factory (:mod:`.app`), one router per resource (:mod:`.routes`), request
and response bodies (:mod:`.schemas`), dependencies (:mod:`.deps`) and the framework-free write path
(:mod:`.ingest_service`). Nothing is built on import; ``shopflow serve`` starts it.
"""

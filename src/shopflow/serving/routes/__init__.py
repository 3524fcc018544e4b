"""One router per resource; ``shopflow.serving.app.ROUTERS`` lists them."""

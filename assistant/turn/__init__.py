"""The turn: a message checked, stored, understood, routed and answered (``pipeline.TurnPipeline``)."""

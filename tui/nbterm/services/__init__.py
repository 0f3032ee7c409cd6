"""The services layer: plain asyncio and blocking code, with no Textual or Rich import.

Each service owns one concern and reports what happens as immutable event objects.
"""

"""Sinks: where emotion events go — stdout, a JSONL file, an MQTT broker."""

"""Sources: camera (OpenCV), microphone (PyAudio) and media files (PyAV), all yielding the same chunks."""

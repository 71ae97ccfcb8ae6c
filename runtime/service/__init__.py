"""Running the loop as a service: the systemd notify protocol and the unit that runs it.

* :mod:`.notify`: :class:`~.notify.Notifier`, the client side of ``sd_notify(3)`` on ``$NOTIFY_SOCKET``
  (one datagram per message, no dependency);
* :mod:`.heartbeat`: :class:`~.heartbeat.Heartbeat`, what the loop tells the service manager and when:
  ``READY=1`` once sources and runners are up, ``WATCHDOG=1`` only while chunks flow and the pipeline
  advances, ``STATUS=`` with events and drops, ``STOPPING=1`` at shutdown;
* :mod:`.unit`: the systemd unit (``Type=notify``, watchdog, restarts, hardening) for a settings file;
* :mod:`.install`: writing that unit and creating its dedicated user.
"""

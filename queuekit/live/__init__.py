"""What watches running brokers: ``queuekit dashboard`` (and its ``/metrics``) and ``queuekit monitor``.

Apart from ``queuekit.report``, which only renders a finished run's results.json. Each stack's live
numbers come from the observer it declares (``Stack.observer``, see ``queuekit.stacks.observe``).
"""

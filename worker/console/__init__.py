"""The operator console: ``/console/`` pages and ``/console/api/`` on the service port.

``app.py`` builds the Starlette app from a ``ConsoleContext`` (what the running service lends
it); ``auth.py`` signs people in; ``reads.py`` and ``actions.py`` are the data and the actions,
shared by the pages (``pages.py``) and the JSON API (``api.py``); ``maps.py`` is the field-map
workbench; ``masking.py`` keeps personal values from those who may not see them.
"""

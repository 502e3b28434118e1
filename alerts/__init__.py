"""The alert domain in one package: what alerts there are (``constants``), their lifecycle
(``lifecycle``), the live set in Redis (``live``; its Lua scripts stay with the Redis code in
``store/alert_scripts.py``), the SQL tables (``models``) and history (``history``), and who may see
which alert and which of its fields (``access``: ``visible_to``)."""

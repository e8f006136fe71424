"""The bottom layer: typed errors, the settings table and the plain facts every layer shares.

``base.errors`` (the engine's typed errors), ``base.settings`` (the one settings
table), ``base.providers`` (what each execution provider is), ``base.cpu`` (what
this CPU is) and ``base.files`` (writes that are either whole or absent). Nothing
here imports another package of the project; every other layer may import this one.
"""

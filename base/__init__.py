"""The bottom layer: typed errors, the settings table and the plain facts every layer shares.

``base.errors`` (the engine's typed errors), ``base.edges`` (request ids, quoted input
cut short and the JSON error shape, for every edge), ``base.settings`` (the one settings
table), ``base.providers`` (what each execution provider is), ``base.cpu`` (what this
CPU is), ``base.memory`` (how much memory this process may still take), ``base.files``
(writes that are either whole or absent) and ``base.assets`` (where the product's own
images are). Nothing here imports another package of the project; every other layer
may import this one.
"""

"""One module per feature extractor; each registers itself in :data:`perr.features.base.EXTRACTORS`.

Every module of this package is imported here, so adding an extractor is adding one file.
"""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")

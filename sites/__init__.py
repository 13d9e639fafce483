"""Site definitions: schema, loader with clear errors, and the reference campus files.

>>> from sites import load_site
>>> site = load_site("colossus1")
>>> len(site.turbines)
12
"""

from .inputs import InputError
from .loader import DATA_DIR, SiteError, list_sites, load_site, read_sources, resolve
from .site import Island, Site

__all__ = ["DATA_DIR", "InputError", "Island", "Site", "SiteError", "list_sites", "load_site", "read_sources", "resolve"]

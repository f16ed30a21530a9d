# -*- coding: utf-8 -*-
# Copyright: Contributors to the inference_gateway.migration collection
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Where a Gateway listens: its address and the listener a route or a probe addresses.

The one resolver of a Gateway's URL: the restore reports it per route parent,
the endpoint probe sends its requests there.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def address(gateway):
    """The first address in the Gateway's status, bracketed when IPv6 so it fits in a URL; None until it has one."""
    addresses = (gateway.get("status") or {}).get("addresses") or []
    value = addresses[0].get("value") if addresses else None
    if value and ":" in value:
        return "[%s]" % value
    return value or None


def listeners(gateway):
    return (gateway.get("spec") or {}).get("listeners") or []


def listener(gateway, section_name=None, port=None):
    """The listener a parentRef (or an operator) names: by section name, else by port, else the first; or None."""
    candidates = listeners(gateway)
    if section_name is not None:
        candidates = [l for l in candidates if l.get("name") == section_name]
    elif port:
        candidates = [l for l in candidates if l.get("port") == port] or candidates
    return candidates[0] if candidates else None


def url(gateway, section_name=None, port=None, path=""):
    """<scheme>://<address>:<listener port><path>; None while the Gateway has no address or no such listener."""
    host, chosen = address(gateway), listener(gateway, section_name, port)
    if host is None or chosen is None:
        return None
    scheme = "https" if chosen.get("protocol") == "HTTPS" else "http"
    return "%s://%s:%s%s" % (scheme, host, chosen["port"], path)

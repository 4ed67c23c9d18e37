"""The ``uqenergy serve`` what-if page: requests in :mod:`uqenergy.web.whatif`, the app in :mod:`uqenergy.web.app`.

Loaded only by ``uqenergy serve`` (and its tests): ``import uqenergy`` and the
command's ``--help`` never import the web framework.
"""

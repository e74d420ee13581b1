"""Imported by the fork server of the site's render pool (:func:`chanlog.render.site.pool_context`): the
modules a render worker needs and the packaged templates, compiled once there, so that every worker forked
from it starts with them (:func:`chanlog.render.site.warm_defaults`). Nothing else imports it."""

from chanlog.render.site import warm_defaults

warm_defaults()

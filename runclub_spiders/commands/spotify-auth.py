# ruff: noqa: N999 -- the module name is the command name users type
"""``scrapy spotify-auth``: Scrapy names commands after their module, hence the hyphen here.

The implementation lives in :mod:`runclub_spiders.auth.login`; Scrapy only picks up command
classes defined in the command's own module, hence the subclass.
"""

from runclub_spiders.auth import login


class Command(login.Command):
    pass

# ruff: noqa: N999 -- the module name is the command name users type
"""``scrapy validate-export DIR``: Scrapy names commands after their module, hence the hyphen.

The implementation lives in :mod:`runclub_spiders.export.validate`; Scrapy only picks up
command classes defined in the command's own module, hence the subclass.
"""

from runclub_spiders.export import validate


class Command(validate.Command):
    pass

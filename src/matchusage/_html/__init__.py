"""HTML pages: the Jinja2 environment, the filters that make any text safe, the templates.

The pages themselves are rendered by [`render_usage_html`][matchusage.render_usage_html]
and [`render_portal_html`][matchusage.billing.render_portal_html]; Jinja2 (the ``html``
extra) is imported the first time one is rendered, never at ``import matchusage``.
"""

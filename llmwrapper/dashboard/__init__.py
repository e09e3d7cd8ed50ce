"""The admin's usage dashboard (/admin/usage/): requests, tokens, cost, errors and
latency percentiles per day, provider, model and subtenant, drawn as SVG on the server.

`queries` reads the call records, `charts` draws, `views` is the admin page.
"""

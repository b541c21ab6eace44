"""Records through the HTTP API: the CSV rules applied to one JSON object at a time.

Framework-free: the API routers translate HTTP to these calls and the errors back to HTTP.
"""

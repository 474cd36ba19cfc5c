"""A catcher for the pipeline's alerts: an SMTP server (aiosmtpd) and a webhook receiver
(standard library) that keep what they receive in memory, log one line per alert and
show them on a page. For a stack without a mail server, and for the tests."""

"""POS terminal diagnostics (终端诊断): what a terminal's own ISO 8583 messages say is wrong, and what to do.

``model`` holds the findings (pure), ``cup_spec`` the China UnionPay POS message spec for pyiso8583,
``log_reader`` reads a message log (hostile input, bounded), ``analysis`` turns decoded messages into findings.
See docs/terminals.md.
"""

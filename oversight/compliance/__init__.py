"""Compliance scans (docs/compliance.md): the registration document and the template's policy
(``registration``), facts gathered from the chain, the content store and anchored logs (``facts``;
the chain read from the node or from the shared event index: ``history``, ``facts_index``), pure
checks over them (``checks``), graded findings tracked to closure with every transition anchored
(``findings``), the scan itself (``scan``), the regulator's report (``report``) and the cron
schedule (``schedule``)."""

"""Notifications (issue #18, interfaces §8): who must know about an alert (``policy``), the durable
outbox written in the same transaction as the alert's step (``outbox``), the channels — webhook and
SMS gateway, with the SSRF guard (``channels``) — the sender loop that delivers the outbox
(``sender``), the targets the operators configure (``targets``) and the in-app notices a signed-in
user reads (``inbox``)."""

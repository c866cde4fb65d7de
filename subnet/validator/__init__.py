"""The reference validator: the `/rec` HTTP API of the public Bitrecs validators (BITRECS_PROTOCOL.md §1),
with the fan-out to miners behind `subnet.validator.miners.MinerPool`.

Importing `subnet.validator.app` or `.miners` imports bittensor (through `subnet.protocol`).
"""

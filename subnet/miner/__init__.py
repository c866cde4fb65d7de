"""The reference miner: LLM providers, the prompt and the repair of its answers, and the bittensor axon.

`providers`, `prompt` and `strategies` need no bittensor; `neuron` imports it (through `subnet.protocol`).
"""

// placeholder until widget.js lands

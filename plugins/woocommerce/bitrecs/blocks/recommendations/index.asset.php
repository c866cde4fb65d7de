<?php
/**
 * The editor script's dependencies (what a build step would generate; the script needs no build).
 *
 * @package Bitrecs
 */

return array(
	'dependencies' => array( 'wp-blocks', 'wp-element', 'wp-block-editor', 'wp-components' ),
	'version'      => '0.1.0',
);

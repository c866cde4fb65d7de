<?php
/**
 * Prints a portal sign-in link built by the plugin's own code, for the server-side test
 * (merchants/tests/test_portal_signin.py): php signin_link.php <key_id> <consumer_secret>.
 * WordPress is the test bootstrap's stubs: the store is https://shop.example, the server https://app.bitrecs.ai.
 *
 * @package Bitrecs
 */

if ( 'cli' !== PHP_SAPI || $argc < 3 ) {
	exit( 2 );
}
require __DIR__ . '/bootstrap.php';
$GLOBALS['bitrecs_wp']['api_key'] = array(
	'key_id'          => $argv[1],
	'consumer_secret' => $argv[2],
);
echo Bitrecs_Settings::portal_signin_url(); // phpcs:ignore WordPress.Security.EscapeOutput -- a CLI test helper.

<?php
/**
 * Boots a real WordPress (Debian's package) on MariaDB for the plugin's integration test: installs the site,
 * activates the plugin, saves a site key and publishes a page with the [bitrecs] shortcode.
 *
 * Usage: php wp_boot.php install   (with WORDPRESS_CONFIG naming /etc/wordpress/config-<name>.php)
 * Prints one JSON object: {"active": bool, "page_url": "...", "version": "...", "portal_url": "...", ...}.
 *
 * @package Bitrecs
 */

if ( 'cli' !== PHP_SAPI ) {
	exit( 1 );
}

$_SERVER['HTTP_HOST']        = getenv( 'BITRECS_WP_HOST' );
$_SERVER['WORDPRESS_CONFIG'] = getenv( 'WORDPRESS_CONFIG' );
$_SERVER['REQUEST_URI']      = '/';
define( 'WP_INSTALLING', true );

require '/usr/share/wordpress/wp-load.php';
require_once ABSPATH . 'wp-admin/includes/upgrade.php';
require_once ABSPATH . 'wp-admin/includes/plugin.php';

if ( ! is_blog_installed() ) {
	wp_install( 'Bitrecs test shop', 'admin', 'admin@shop.example', false, '', wp_generate_password( 24 ) );
}
switch_theme( 'twentytwentyone' );
update_option( 'permalink_structure', '' );
$result = activate_plugin( 'bitrecs/bitrecs.php' );
update_option( 'bitrecs_site_key', 'wp-demo' );
update_option( 'bitrecs_api_base', 'http://127.0.0.1:9' );
$page_id = wp_insert_post(
	array(
		'post_type'    => 'page',
		'post_status'  => 'publish',
		'post_title'   => 'Popular now',
		'post_content' => '[bitrecs placement="home" limit="3"]',
	)
);
// "Open Bitrecs portal" before WooCommerce made a key (no api_keys table: no link), then after: WooCommerce's own
// table (WC_Install's schema) holding an older and the current key of the Bitrecs app, and another app's key.
$portal_url_unconnected = Bitrecs_Settings::portal_signin_url();
global $wpdb;
$wpdb->query(
	"CREATE TABLE IF NOT EXISTS {$wpdb->prefix}woocommerce_api_keys (
		key_id BIGINT UNSIGNED NOT NULL auto_increment, user_id BIGINT UNSIGNED NOT NULL, description varchar(200) NULL,
		permissions varchar(10) NOT NULL, consumer_key char(64) NOT NULL, consumer_secret char(43) NOT NULL,
		nonces longtext NULL, truncated_key char(7) NOT NULL, last_access datetime NULL default null,
		PRIMARY KEY (key_id), KEY consumer_key (consumer_key), KEY consumer_secret (consumer_secret)
	)"
);
foreach ( array( 'Bitrecs - API (2026-01-01 10:00:00)', 'Bitrecs - API (2026-02-01 10:00:00)', 'Other app - API (2026-03-01 10:00:00)' ) as $n => $description ) {
	$wpdb->insert(
		$wpdb->prefix . 'woocommerce_api_keys',
		array(
			'user_id'         => 1,
			'description'     => $description,
			'permissions'     => 'read',
			'consumer_key'    => hash( 'sha256', 'ck_' . $n ),
			'consumer_secret' => 'cs_' . str_repeat( (string) $n, 40 ),
			'truncated_key'   => 'abcdefg',
		)
	);
}
echo wp_json_encode(
	array(
		'portal_url_unconnected' => $portal_url_unconnected,
		'portal_url'             => Bitrecs_Settings::portal_signin_url(),
		'active'   => ! is_wp_error( $result ) && is_plugin_active( 'bitrecs/bitrecs.php' ),
		'error'    => is_wp_error( $result ) ? $result->get_error_message() : '',
		'page_url' => '/?page_id=' . $page_id,
		'version'  => get_bloginfo( 'version' ),
	)
);

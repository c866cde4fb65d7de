<?php
/**
 * Boots a real WordPress (Debian's package) on MariaDB for the plugin's integration test: installs the site,
 * activates the plugin, saves a site key and publishes a page with the [bitrecs] shortcode.
 *
 * Usage: php wp_boot.php install   (with WORDPRESS_CONFIG naming /etc/wordpress/config-<name>.php)
 * Prints one JSON object: {"active": bool, "page_url": "...", "version": "..."}.
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
echo wp_json_encode(
	array(
		'active'   => ! is_wp_error( $result ) && is_plugin_active( 'bitrecs/bitrecs.php' ),
		'error'    => is_wp_error( $result ) ? $result->get_error_message() : '',
		'page_url' => '/?page_id=' . $page_id,
		'version'  => get_bloginfo( 'version' ),
	)
);

<?php
/**
 * Uninstall: forget the plugin's options (order item meta stays: it is the store's order history).
 *
 * @package Bitrecs
 */

defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

delete_option( 'bitrecs_site_key' );
delete_option( 'bitrecs_api_base' );

<?php
/**
 * Plugin Name:       Bitrecs Recommendations
 * Plugin URI:        https://bitrecs.ai
 * Description:       Product recommendations from the Bitrecs network: "goes well with", "customers also bought" and cart add-ons, attributed to the orders they bring.
 * Version:           0.1.0
 * Requires at least: 6.1
 * Requires PHP:      7.4
 * Author:            Bitrecs
 * License:           MIT
 * Text Domain:       bitrecs
 * WC requires at least: 8.3
 * WC tested up to:   9.4
 *
 * @package Bitrecs
 */

defined( 'ABSPATH' ) || exit;

define( 'BITRECS_VERSION', '0.1.0' );
define( 'BITRECS_PLUGIN_FILE', __FILE__ );
define( 'BITRECS_PLUGIN_DIR', __DIR__ );

require_once __DIR__ . '/includes/class-bitrecs-plugin.php';
require_once __DIR__ . '/includes/class-bitrecs-settings.php';

Bitrecs_Plugin::register();
Bitrecs_Settings::register();

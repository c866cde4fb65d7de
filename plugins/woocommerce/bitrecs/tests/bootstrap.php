<?php
/**
 * Test bootstrap: the few WordPress and WooCommerce functions the plugin calls, recording what it asks of them.
 * WooCommerce cannot be installed here, so its API is stubbed at the boundary the plugin uses.
 *
 * @package Bitrecs
 */

namespace Automattic\WooCommerce\Utilities {
	class FeaturesUtil {
		public static $declared = array();
		public static function declare_compatibility( $feature, $plugin_file, $positive ) {
			self::$declared[] = array( $feature, $plugin_file, $positive );
			return true;
		}
	}
}

namespace {
	define( 'ABSPATH', __DIR__ . '/' );

	/** Everything the plugin registered or called, reset per test by bitrecs_reset(). */
	$GLOBALS['bitrecs_wp'] = array();

	define( 'ARRAY_A', 'ARRAY_A' );

	/** What wp_redirect() and wp_die() were asked for (they end the request, so the stubs throw). */
	class Bitrecs_Test_Exit extends \Exception {
		public $kind;
		public $value;
		public $status;
		public function __construct( $kind, $value, $status ) {
			parent::__construct( $kind );
			$this->kind   = $kind;
			$this->value  = $value;
			$this->status = $status;
		}
	}

	/** $wpdb: the api_keys row the test sets in $GLOBALS['bitrecs_wp']['api_key'], and the queries asked. */
	class Bitrecs_Test_Wpdb {
		public $prefix = 'wp_';
		public function esc_like( $text ) {
			return addcslashes( $text, '_%\\' );
		}
		public function prepare( $query, ...$args ) {
			return vsprintf( str_replace( '%s', "'%s'", $query ), $args );
		}
		public $suppressed = false;
		public function suppress_errors( $suppress = true ) {
			$previous         = $this->suppressed;
			$this->suppressed = (bool) $suppress;
			return $previous;
		}
		public function get_row( $query, $output ) {
			$GLOBALS['bitrecs_wp']['queries'][] = $query;
			return $GLOBALS['bitrecs_wp']['api_key'];
		}
	}
	$GLOBALS['wpdb'] = new Bitrecs_Test_Wpdb();

	function bitrecs_reset() {
		$GLOBALS['bitrecs_wp'] = array(
			'actions'    => array(),
			'filters'    => array(),
			'scripts'    => array(),
			'shortcodes' => array(),
			'blocks'     => array(),
			'settings'   => array(),
			'options'    => array(),
			'pages'      => array(),
			'is_product' => false,
			'is_cart'    => false,
			'product'    => null,
			'cart'       => null,
			'locale'     => 'en_GB',
			'currency'   => 'GBP',
			'api_key'    => null,
			'queries'    => array(),
			'can'        => true,
			'referer'    => array(),
		);
		$_GET     = array();
		$_POST    = array();
		$_REQUEST = array();
		\Automattic\WooCommerce\Utilities\FeaturesUtil::$declared = array();
	}
	bitrecs_reset();

	function add_action( $hook, $callback, $priority = 10, $args = 1 ) {
		$GLOBALS['bitrecs_wp']['actions'][ $hook ][] = array( $callback, $priority, $args );
		return true;
	}
	function add_filter( $hook, $callback, $priority = 10, $args = 1 ) {
		$GLOBALS['bitrecs_wp']['filters'][ $hook ][] = array( $callback, $priority, $args );
		return true;
	}
	function __return_true() {
		return true;
	}
	function plugin_basename( $file ) {
		return 'bitrecs/' . basename( $file );
	}
	function plugins_url( $path, $plugin_file ) {
		return 'https://shop.example/wp-content/plugins/bitrecs/' . $path;
	}
	function wp_enqueue_script( $handle, $src = '', $deps = array(), $ver = false, $args = array() ) {
		$GLOBALS['bitrecs_wp']['scripts'][ $handle ] = array( $src, $deps, $ver, $args );
	}
	function get_option( $name, $default = false ) {
		return array_key_exists( $name, $GLOBALS['bitrecs_wp']['options'] ) ? $GLOBALS['bitrecs_wp']['options'][ $name ] : $default;
	}
	function esc_attr( $text ) {
		return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
	}
	function esc_html( $text ) {
		return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
	}
	function esc_url( $url ) {
		return htmlspecialchars( (string) $url, ENT_QUOTES, 'UTF-8' );
	}
	function esc_html__( $text, $domain = 'default' ) {
		return esc_html( $text );
	}
	function esc_html_e( $text, $domain = 'default' ) {
		echo esc_html( $text );
	}
	function wp_unslash( $value ) {
		return is_array( $value ) ? array_map( 'wp_unslash', $value ) : stripslashes( (string) $value );
	}
	function shortcode_atts( $pairs, $atts, $shortcode = '' ) {
		$atts = (array) $atts;
		$out  = array();
		foreach ( $pairs as $name => $default ) {
			$out[ $name ] = array_key_exists( $name, $atts ) ? $atts[ $name ] : $default;
		}
		return $out;
	}
	function add_shortcode( $tag, $callback ) {
		$GLOBALS['bitrecs_wp']['shortcodes'][ $tag ] = $callback;
	}
	function register_block_type( $path, $args = array() ) {
		$GLOBALS['bitrecs_wp']['blocks'][ $path ] = $args;
		return true;
	}
	function register_setting( $group, $name, $args = array() ) {
		$GLOBALS['bitrecs_wp']['settings'][ $name ] = array( $group, $args );
	}
	function add_submenu_page( $parent, $page_title, $menu_title, $capability, $slug, $callback ) {
		$GLOBALS['bitrecs_wp']['pages'][ $slug ] = array( $parent, $capability, $callback );
		return $slug;
	}
	function admin_url( $path = '' ) {
		return 'https://shop.example/wp-admin/' . ltrim( $path, '/' );
	}
	function wp_nonce_url( $url, $action ) {
		return $url . '&_wpnonce=nonce-of-' . $action;
	}
	function current_user_can( $capability ) {
		return $GLOBALS['bitrecs_wp']['can'];
	}
	function check_admin_referer( $action ) {
		$GLOBALS['bitrecs_wp']['referer'][] = $action;
		return 1;
	}
	function wp_redirect( $location, $status = 302 ) {
		throw new Bitrecs_Test_Exit( 'redirect', $location, $status );
	}
	function wp_die( $message = '', $title = '', $args = array() ) {
		throw new Bitrecs_Test_Exit( 'die', $message, $args['response'] ?? 500 );
	}
	function settings_fields( $group ) {
		echo '<input type="hidden" name="option_page" value="' . esc_attr( $group ) . '" />';
	}
	function submit_button() {
		echo '<input type="submit" class="button button-primary" value="Save Changes" />';
	}
	function get_locale() {
		return $GLOBALS['bitrecs_wp']['locale'];
	}
	function get_woocommerce_currency() {
		return $GLOBALS['bitrecs_wp']['currency'];
	}
	function home_url( $path = '' ) {
		return 'https://shop.example/' . ltrim( $path, '/' );
	}
	function untrailingslashit( $value ) {
		return rtrim( $value, '/\\' );
	}
	function is_product() {
		return $GLOBALS['bitrecs_wp']['is_product'];
	}
	function is_cart() {
		return $GLOBALS['bitrecs_wp']['is_cart'];
	}
	function get_the_ID() {
		return 42;
	}
	function wc_get_product( $id ) {
		return $GLOBALS['bitrecs_wp']['product'];
	}
	function WC() {
		return (object) array( 'cart' => $GLOBALS['bitrecs_wp']['cart'] );
	}

	/** A WooCommerce product as the plugin reads it. */
	class Bitrecs_Test_Product {
		private $id;
		private $sku;
		public function __construct( $id, $sku ) {
			$this->id  = $id;
			$this->sku = $sku;
		}
		public function get_id() {
			return $this->id;
		}
		public function get_sku() {
			return $this->sku;
		}
	}

	/** A cart with get_cart(). */
	class Bitrecs_Test_Cart {
		private $items;
		public function __construct( $items ) {
			$this->items = $items;
		}
		public function get_cart() {
			return $this->items;
		}
	}

	/** An order line that records add_meta_data(). */
	class Bitrecs_Test_Order_Item {
		public $meta = array();
		public function add_meta_data( $key, $value, $unique = false ) {
			$this->meta[] = array( $key, $value, $unique );
		}
	}

	/** An order that records update_meta_data(). */
	class Bitrecs_Test_Order {
		public $meta = array();
		public function update_meta_data( $key, $value ) {
			$this->meta[ $key ] = $value;
		}
	}

	/** The Store API request: get_param() only. */
	class WP_REST_Request {
		private $params;
		public function __construct( $params ) {
			$this->params = $params;
		}
		public function get_param( $key ) {
			return isset( $this->params[ $key ] ) ? $this->params[ $key ] : null;
		}
	}

	require dirname( __DIR__ ) . '/bitrecs.php';
}

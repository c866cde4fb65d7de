<?php
/**
 * The storefront side of Bitrecs: the widget script, placements (shortcode and block), and the rec id carried from
 * a recommendation click through the cart (classic and Store API / blocks) into the order line's meta, where the
 * Bitrecs order sync reads it.
 *
 * @package Bitrecs
 */

defined( 'ABSPATH' ) || exit;

/**
 * Hooks of the Bitrecs plugin; every method is a WordPress or WooCommerce callback.
 */
final class Bitrecs_Plugin {

	/** The order item meta key (and cart item data key) that the Bitrecs order sync reads. */
	const REC_ID_KEY = '_bitrecs_rec_id';

	/** The experiment arm the shopper saw, carried beside the rec id. */
	const ARM_KEY = '_bitrecs_arm';

	/**
	 * The visitor's anonymous session id (only after consent: the widget adds it to the cart form as
	 * attributes[_bitrecs_sid]), kept on the cart item and written as order meta so the order counts for the
	 * visitor's experiment arm, the holdout included.
	 */
	const SID_KEY = '_bitrecs_sid';

	/** The query parameter a recommendation card adds to the product URL. */
	const REC_ID_PARAM = 'bitrecs_rec_id';

	/** The query parameter carrying the arm. */
	const ARM_PARAM = 'bitrecs_arm';

	/** The placements the widget knows. */
	const PLACEMENTS = array( 'product', 'cart', 'home' );

	/** The script handle. */
	const SCRIPT_HANDLE = 'bitrecs-widget';

	/**
	 * Register every hook.
	 */
	public static function register() {
		add_action( 'before_woocommerce_init', array( __CLASS__, 'declare_compatibility' ) );
		add_action( 'wp_enqueue_scripts', array( __CLASS__, 'enqueue_widget' ) );
		add_filter( 'script_loader_tag', array( __CLASS__, 'script_tag' ), 10, 2 );
		add_action( 'init', array( __CLASS__, 'register_placements' ) );
		add_action( 'woocommerce_before_add_to_cart_button', array( __CLASS__, 'render_rec_id_field' ) );
		add_filter( 'woocommerce_add_cart_item_data', array( __CLASS__, 'add_cart_item_data' ), 10, 3 );
		add_filter( 'woocommerce_store_api_add_to_cart_data', array( __CLASS__, 'store_api_add_to_cart_data' ), 10, 2 );
		add_action( 'woocommerce_checkout_create_order_line_item', array( __CLASS__, 'add_order_item_meta' ), 10, 4 );
		add_filter( 'woocommerce_hidden_order_itemmeta', array( __CLASS__, 'hidden_order_itemmeta' ) );
		// The WP Consent API: this plugin reads wp_has_consent() (the widget checks 'statistics' before it stores an
		// id or sends per-visitor events), so it declares itself compliant.
		add_filter( 'wp_consent_api_registered_' . plugin_basename( BITRECS_PLUGIN_FILE ), '__return_true' );
	}

	/**
	 * Declare HPOS (custom order tables) and cart/checkout blocks compatibility.
	 */
	public static function declare_compatibility() {
		if ( class_exists( '\Automattic\WooCommerce\Utilities\FeaturesUtil' ) ) {
			\Automattic\WooCommerce\Utilities\FeaturesUtil::declare_compatibility( 'custom_order_tables', BITRECS_PLUGIN_FILE, true );
			\Automattic\WooCommerce\Utilities\FeaturesUtil::declare_compatibility( 'cart_checkout_blocks', BITRECS_PLUGIN_FILE, true );
		}
	}

	/**
	 * Enqueue the widget (deferred, in the footer) once a site key is set.
	 */
	public static function enqueue_widget() {
		if ( '' === Bitrecs_Settings::site_key() ) {
			return;
		}
		wp_enqueue_script(
			self::SCRIPT_HANDLE,
			plugins_url( 'assets/bitrecs-widget.js', BITRECS_PLUGIN_FILE ),
			array(),
			BITRECS_VERSION,
			array(
				'strategy'  => 'defer',
				'in_footer' => true,
			)
		);
	}

	/**
	 * Add the widget's configuration to its script tag (site key, server, currency and locale).
	 *
	 * @param string $tag    The script tag WordPress prints.
	 * @param string $handle The script handle.
	 * @return string
	 */
	public static function script_tag( $tag, $handle ) {
		if ( self::SCRIPT_HANDLE !== $handle ) {
			return $tag;
		}
		$attributes = array(
			'data-site-key' => Bitrecs_Settings::site_key(),
			'data-api-base' => Bitrecs_Settings::api_base(),
			'data-currency' => function_exists( 'get_woocommerce_currency' ) ? get_woocommerce_currency() : '',
			'data-locale'   => str_replace( '_', '-', get_locale() ),
		);
		$extra = '';
		foreach ( $attributes as $name => $value ) {
			if ( '' !== $value ) {
				$extra .= sprintf( ' %s="%s"', $name, esc_attr( $value ) );
			}
		}
		// WordPress 6.3+ prints defer from the enqueue strategy; older versions ignore the strategy, so add it here.
		if ( ! preg_match( '/\sdefer[\s>=]/', $tag ) ) {
			$extra .= ' defer';
		}
		return preg_replace( '/<script\b/', '<script' . $extra, $tag, 1 );
	}

	/**
	 * Register the [bitrecs] shortcode and the bitrecs/recommendations block.
	 */
	public static function register_placements() {
		add_shortcode( 'bitrecs', array( __CLASS__, 'shortcode' ) );
		if ( function_exists( 'register_block_type' ) ) {
			register_block_type(
				BITRECS_PLUGIN_DIR . '/blocks/recommendations',
				array( 'render_callback' => array( __CLASS__, 'render_block' ) )
			);
		}
	}

	/**
	 * The [bitrecs placement="product|cart|home" limit="4" sku=""] shortcode.
	 *
	 * @param array|string $atts Shortcode attributes.
	 * @return string
	 */
	public static function shortcode( $atts ) {
		$atts = shortcode_atts(
			array(
				'placement' => '',
				'limit'     => 4,
				'sku'       => '',
			),
			$atts,
			'bitrecs'
		);
		return self::container( $atts['placement'], (int) $atts['limit'], (string) $atts['sku'] );
	}

	/**
	 * Render the block: the same container as the shortcode.
	 *
	 * @param array $attributes Block attributes.
	 * @return string
	 */
	public static function render_block( $attributes ) {
		$placement = isset( $attributes['placement'] ) ? (string) $attributes['placement'] : '';
		$limit     = isset( $attributes['limit'] ) ? (int) $attributes['limit'] : 4;
		return self::container( $placement, $limit, '' );
	}

	/**
	 * The widget's container: <div data-bitrecs-placement data-bitrecs-sku data-bitrecs-limit>.
	 *
	 * An empty placement is taken from the page: product on a single product page, cart on the cart, home elsewhere.
	 *
	 * @param string $placement product, cart, home or ''.
	 * @param int    $limit     How many cards (1 to 20).
	 * @param string $sku       The query product's SKU; the current product's when empty.
	 * @return string
	 */
	public static function container( $placement, $limit, $sku ) {
		if ( ! in_array( $placement, self::PLACEMENTS, true ) ) {
			$placement = self::page_placement();
		}
		$limit = max( 1, min( 20, $limit ) );
		if ( '' === $sku && 'product' === $placement ) {
			$sku = self::current_product_sku();
		}
		if ( 'product' === $placement && '' === $sku ) {
			return '';
		}
		$cart = 'cart' === $placement ? implode( ',', self::cart_skus() ) : '';
		return sprintf(
			'<div class="bitrecs-placement" data-bitrecs-placement="%s" data-bitrecs-sku="%s" data-bitrecs-limit="%d"%s></div>',
			esc_attr( $placement ),
			esc_attr( $sku ),
			$limit,
			'' !== $cart ? ' data-bitrecs-cart="' . esc_attr( $cart ) . '"' : ''
		);
	}

	/**
	 * On a product page reached through a recommendation, a hidden field that carries the rec id into the cart.
	 */
	public static function render_rec_id_field() {
		$rec_id = self::request_value( self::REC_ID_PARAM );
		if ( '' !== $rec_id ) {
			printf( '<input type="hidden" name="%s" value="%s" />', esc_attr( self::REC_ID_PARAM ), esc_attr( $rec_id ) );
			$arm = self::request_value( self::ARM_PARAM );
			if ( '' !== $arm ) {
				printf( '<input type="hidden" name="%s" value="%s" />', esc_attr( self::ARM_PARAM ), esc_attr( $arm ) );
			}
		}
	}

	/**
	 * Classic cart: keep the rec id (and arm) of the recommendation the shopper came through on the cart item.
	 *
	 * The rec id makes the line distinct: the same product added once from a recommendation and once otherwise are
	 * two lines, so only the recommended one is attributed.
	 *
	 * @param array $cart_item_data Extra cart item data.
	 * @param int   $product_id     The product.
	 * @param int   $variation_id   The variation.
	 * @return array
	 */
	public static function add_cart_item_data( $cart_item_data, $product_id = 0, $variation_id = 0 ) {
		$rec_id = self::request_value( self::REC_ID_PARAM );
		if ( '' === $rec_id ) {
			$rec_id = self::request_property( self::REC_ID_KEY );
		}
		if ( '' !== $rec_id ) {
			$cart_item_data[ self::REC_ID_KEY ] = $rec_id;
			$arm                                = self::request_value( self::ARM_PARAM );
			if ( '' === $arm ) {
				$arm = self::request_property( self::ARM_KEY );
			}
			if ( '' !== $arm ) {
				$cart_item_data[ self::ARM_KEY ] = $arm;
			}
		}
		// phpcs:ignore WordPress.Security.NonceVerification.Missing -- an attribution hint, not a state change.
		$attributes = isset( $_POST['attributes'] ) && is_array( $_POST['attributes'] ) ? wp_unslash( $_POST['attributes'] ) : array();
		$sid        = self::clean_sid( isset( $attributes[ self::SID_KEY ] ) ? $attributes[ self::SID_KEY ] : '' );
		if ( '' !== $sid ) {
			$cart_item_data[ self::SID_KEY ] = $sid;
		}
		return $cart_item_data;
	}

	/**
	 * Blocks cart and checkout (Store API /wc/store/v1/cart/add-item): the rec id arrives as a request parameter.
	 *
	 * @param array           $add_to_cart_data id, quantity, variation, cart_item_data.
	 * @param WP_REST_Request $request          The Store API request.
	 * @return array
	 */
	public static function store_api_add_to_cart_data( $add_to_cart_data, $request ) {
		$rec_id = self::clean_rec_id( $request->get_param( self::REC_ID_PARAM ) );
		if ( '' !== $rec_id ) {
			if ( ! isset( $add_to_cart_data['cart_item_data'] ) || ! is_array( $add_to_cart_data['cart_item_data'] ) ) {
				$add_to_cart_data['cart_item_data'] = array();
			}
			$add_to_cart_data['cart_item_data'][ self::REC_ID_KEY ] = $rec_id;
			$arm = self::clean_arm( $request->get_param( self::ARM_PARAM ) );
			if ( '' !== $arm ) {
				$add_to_cart_data['cart_item_data'][ self::ARM_KEY ] = $arm;
			}
		}
		return $add_to_cart_data;
	}

	/**
	 * Write the cart item's rec id (and arm) as order item meta, which the Bitrecs order sync reads.
	 *
	 * @param WC_Order_Item_Product $item          The order line being created.
	 * @param string                $cart_item_key The cart item key.
	 * @param array                 $values        The cart item.
	 * @param WC_Order              $order         The order.
	 */
	public static function add_order_item_meta( $item, $cart_item_key, $values, $order = null ) {
		if ( ! empty( $values[ self::REC_ID_KEY ] ) ) {
			$item->add_meta_data( self::REC_ID_KEY, self::clean_rec_id( $values[ self::REC_ID_KEY ] ), true );
		}
		if ( ! empty( $values[ self::ARM_KEY ] ) ) {
			$item->add_meta_data( self::ARM_KEY, self::clean_arm( $values[ self::ARM_KEY ] ), true );
		}
		$sid = self::clean_sid( isset( $values[ self::SID_KEY ] ) ? $values[ self::SID_KEY ] : '' );
		if ( '' !== $sid && is_object( $order ) && method_exists( $order, 'update_meta_data' ) ) {
			$order->update_meta_data( self::SID_KEY, $sid );
		}
	}

	/**
	 * Keep the meta out of the order screen's line display (it starts with "_" and is ours).
	 *
	 * @param array $hidden Hidden meta keys.
	 * @return array
	 */
	public static function hidden_order_itemmeta( $hidden ) {
		$hidden[] = self::REC_ID_KEY;
		$hidden[] = self::ARM_KEY;
		return $hidden;
	}

	/**
	 * A rec id as Bitrecs issues them ("l_" or "n_" then hex), or '' for anything else.
	 *
	 * @param mixed $value Untrusted input.
	 * @return string
	 */
	public static function clean_rec_id( $value ) {
		$value = is_string( $value ) ? trim( $value ) : '';
		return preg_match( '/^[a-z]_[A-Za-z0-9]{1,30}$/', $value ) ? $value : '';
	}

	/**
	 * An anonymous session id as the widget makes them (a UUID), or '' for anything else.
	 *
	 * @param mixed $value Untrusted input.
	 * @return string
	 */
	public static function clean_sid( $value ) {
		$value = is_string( $value ) ? trim( $value ) : '';
		return preg_match( '/^[A-Za-z0-9-]{8,64}$/', $value ) ? $value : '';
	}

	/**
	 * An experiment arm name, or '' for anything else.
	 *
	 * @param mixed $value Untrusted input.
	 * @return string
	 */
	public static function clean_arm( $value ) {
		$value = is_string( $value ) ? trim( $value ) : '';
		return preg_match( '/^[a-z_]{1,20}$/', $value ) ? $value : '';
	}

	/**
	 * A cleaned rec id or arm from the query string or form.
	 *
	 * @param string $name The parameter.
	 * @return string
	 */
	private static function request_value( $name ) {
		// phpcs:ignore WordPress.Security.NonceVerification.Recommended -- an attribution hint, not a state change.
		$raw = isset( $_REQUEST[ $name ] ) ? wp_unslash( $_REQUEST[ $name ] ) : '';
		return self::ARM_PARAM === $name ? self::clean_arm( $raw ) : self::clean_rec_id( $raw );
	}

	/**
	 * A cleaned value of properties[<key>] (the Shopify-style field the widget adds to product forms).
	 *
	 * @param string $key _bitrecs_rec_id or _bitrecs_arm.
	 * @return string
	 */
	private static function request_property( $key ) {
		// phpcs:ignore WordPress.Security.NonceVerification.Missing -- an attribution hint, not a state change.
		$props = isset( $_POST['properties'] ) && is_array( $_POST['properties'] ) ? wp_unslash( $_POST['properties'] ) : array();
		$raw   = isset( $props[ $key ] ) ? $props[ $key ] : '';
		return self::ARM_KEY === $key ? self::clean_arm( $raw ) : self::clean_rec_id( $raw );
	}

	/**
	 * The placement the current page implies.
	 *
	 * @return string
	 */
	private static function page_placement() {
		if ( function_exists( 'is_product' ) && is_product() ) {
			return 'product';
		}
		if ( function_exists( 'is_cart' ) && is_cart() ) {
			return 'cart';
		}
		return 'home';
	}

	/**
	 * The current product's SKU, or its id when it has none.
	 *
	 * @return string
	 */
	private static function current_product_sku() {
		if ( ! function_exists( 'wc_get_product' ) ) {
			return '';
		}
		$product = wc_get_product( get_the_ID() );
		if ( ! $product ) {
			return '';
		}
		$sku = (string) $product->get_sku();
		return '' !== $sku ? $sku : (string) $product->get_id();
	}

	/**
	 * The SKUs (or ids) of the products in the cart.
	 *
	 * @return string[]
	 */
	private static function cart_skus() {
		if ( ! function_exists( 'WC' ) || ! WC()->cart ) {
			return array();
		}
		$skus = array();
		foreach ( WC()->cart->get_cart() as $item ) {
			if ( empty( $item['data'] ) ) {
				continue;
			}
			$sku    = (string) $item['data']->get_sku();
			$skus[] = '' !== $sku ? $sku : (string) $item['data']->get_id();
		}
		return array_values( array_unique( $skus ) );
	}
}

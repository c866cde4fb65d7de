<?php
/**
 * The plugin's hooks, each called as WordPress and WooCommerce call it.
 *
 * @package Bitrecs
 */

use PHPUnit\Framework\TestCase;

final class PluginTest extends TestCase {

	protected function setUp(): void {
		bitrecs_reset();
		Bitrecs_Plugin::register();
		Bitrecs_Settings::register();
	}

	private function hooked( $kind, $hook ) {
		return $GLOBALS['bitrecs_wp'][ $kind ][ $hook ] ?? array();
	}

	public function test_every_hook_is_registered_with_its_argument_count() {
		$this->assertSame( array( array( array( 'Bitrecs_Plugin', 'declare_compatibility' ), 10, 1 ) ), $this->hooked( 'actions', 'before_woocommerce_init' ) );
		$this->assertSame( array( array( array( 'Bitrecs_Plugin', 'enqueue_widget' ), 10, 1 ) ), $this->hooked( 'actions', 'wp_enqueue_scripts' ) );
		$this->assertSame( array( array( array( 'Bitrecs_Plugin', 'add_cart_item_data' ), 10, 3 ) ), $this->hooked( 'filters', 'woocommerce_add_cart_item_data' ) );
		$this->assertSame( array( array( array( 'Bitrecs_Plugin', 'store_api_add_to_cart_data' ), 10, 2 ) ), $this->hooked( 'filters', 'woocommerce_store_api_add_to_cart_data' ) );
		$this->assertSame( array( array( array( 'Bitrecs_Plugin', 'add_order_item_meta' ), 10, 4 ) ), $this->hooked( 'actions', 'woocommerce_checkout_create_order_line_item' ) );
		$this->assertSame( array( array( '__return_true', 10, 1 ) ), $this->hooked( 'filters', 'wp_consent_api_registered_bitrecs/bitrecs.php' ) );
	}

	public function test_hpos_and_blocks_compatibility_are_declared() {
		Bitrecs_Plugin::declare_compatibility();
		$this->assertSame(
			array(
				array( 'custom_order_tables', BITRECS_PLUGIN_FILE, true ),
				array( 'cart_checkout_blocks', BITRECS_PLUGIN_FILE, true ),
			),
			\Automattic\WooCommerce\Utilities\FeaturesUtil::$declared
		);
	}

	public function test_the_widget_is_not_enqueued_without_a_site_key() {
		Bitrecs_Plugin::enqueue_widget();
		$this->assertSame( array(), $GLOBALS['bitrecs_wp']['scripts'] );
	}

	public function test_the_widget_is_enqueued_deferred_in_the_footer() {
		$GLOBALS['bitrecs_wp']['options']['bitrecs_site_key'] = 'sk_shop-1';
		Bitrecs_Plugin::enqueue_widget();
		$this->assertSame(
			array(
				'bitrecs-widget' => array(
					'https://shop.example/wp-content/plugins/bitrecs/assets/bitrecs-widget.js',
					array(),
					BITRECS_VERSION,
					array(
						'strategy'  => 'defer',
						'in_footer' => true,
					),
				),
			),
			$GLOBALS['bitrecs_wp']['scripts']
		);
	}

	public function test_the_script_tag_carries_the_configuration() {
		$GLOBALS['bitrecs_wp']['options']['bitrecs_site_key'] = 'sk_shop-1';
		$GLOBALS['bitrecs_wp']['options']['bitrecs_api_base'] = 'https://recs.example/';
		$tag = Bitrecs_Plugin::script_tag( '<script src="x.js" defer></script>', 'bitrecs-widget' );
		$this->assertSame(
			'<script data-site-key="sk_shop-1" data-api-base="https://recs.example" data-currency="GBP" data-locale="en-GB" src="x.js" defer></script>',
			$tag
		);
		$this->assertSame( '<script src="other.js"></script>', Bitrecs_Plugin::script_tag( '<script src="other.js"></script>', 'jquery' ) );
		$this->assertSame(
			"<script data-site-key=\"sk_shop-1\" data-api-base=\"https://recs.example\" data-currency=\"GBP\" data-locale=\"en-GB\" defer src='x.js' id='bitrecs-widget-js'></script>",
			Bitrecs_Plugin::script_tag( "<script src='x.js' id='bitrecs-widget-js'></script>", 'bitrecs-widget' ),
			'WordPress before 6.3 ignores the defer strategy: the tag gets it here'
		);
	}

	public function test_a_stored_site_key_that_is_not_one_is_ignored() {
		$GLOBALS['bitrecs_wp']['options']['bitrecs_site_key'] = '"><script>alert(1)</script>';
		Bitrecs_Plugin::enqueue_widget();
		$this->assertSame( array(), $GLOBALS['bitrecs_wp']['scripts'] );
	}

	public function test_the_shortcode_renders_the_container_for_the_current_product() {
		$GLOBALS['bitrecs_wp']['is_product'] = true;
		$GLOBALS['bitrecs_wp']['product']    = new Bitrecs_Test_Product( 42, 'MUG-"1"' );
		$this->assertSame(
			'<div class="bitrecs-placement" data-bitrecs-placement="product" data-bitrecs-sku="MUG-&quot;1&quot;" data-bitrecs-limit="3"></div>',
			Bitrecs_Plugin::shortcode( array( 'limit' => '3' ) )
		);
	}

	public function test_a_product_without_sku_is_asked_for_by_id_and_limits_are_bounded() {
		$GLOBALS['bitrecs_wp']['product'] = new Bitrecs_Test_Product( 42, '' );
		$this->assertSame(
			'<div class="bitrecs-placement" data-bitrecs-placement="product" data-bitrecs-sku="42" data-bitrecs-limit="20"></div>',
			Bitrecs_Plugin::shortcode( array( 'placement' => 'product', 'limit' => '500' ) )
		);
	}

	public function test_a_product_placement_with_no_product_renders_nothing() {
		$this->assertSame( '', Bitrecs_Plugin::shortcode( array( 'placement' => 'product' ) ) );
	}

	public function test_the_cart_placement_carries_the_cart() {
		$GLOBALS['bitrecs_wp']['is_cart'] = true;
		$GLOBALS['bitrecs_wp']['cart']    = new Bitrecs_Test_Cart(
			array(
				'a' => array( 'data' => new Bitrecs_Test_Product( 7, 'TEA' ) ),
				'b' => array( 'data' => new Bitrecs_Test_Product( 8, '' ) ),
				'c' => array( 'data' => new Bitrecs_Test_Product( 7, 'TEA' ) ),
			)
		);
		$this->assertSame(
			'<div class="bitrecs-placement" data-bitrecs-placement="cart" data-bitrecs-sku="" data-bitrecs-limit="4" data-bitrecs-cart="TEA,8"></div>',
			Bitrecs_Plugin::shortcode( '' )
		);
	}

	public function test_the_block_renders_the_same_container_as_the_shortcode() {
		Bitrecs_Plugin::register_placements();
		$this->assertSame( array( BITRECS_PLUGIN_DIR . '/blocks/recommendations' ), array_keys( $GLOBALS['bitrecs_wp']['blocks'] ) );
		$this->assertSame( array( 'Bitrecs_Plugin', 'shortcode' ), $GLOBALS['bitrecs_wp']['shortcodes']['bitrecs'] );
		$this->assertSame(
			'<div class="bitrecs-placement" data-bitrecs-placement="home" data-bitrecs-sku="" data-bitrecs-limit="6"></div>',
			Bitrecs_Plugin::render_block( array( 'placement' => 'home', 'limit' => 6 ) )
		);
		$block = json_decode( file_get_contents( BITRECS_PLUGIN_DIR . '/blocks/recommendations/block.json' ), true );
		$this->assertSame( 'bitrecs/recommendations', $block['name'] );
	}

	public function test_a_product_page_reached_from_a_recommendation_carries_the_rec_id_in_its_form() {
		$_REQUEST = array( 'bitrecs_rec_id' => 'n_0123abcd', 'bitrecs_arm' => 'interleave' );
		ob_start();
		Bitrecs_Plugin::render_rec_id_field();
		$this->assertSame(
			'<input type="hidden" name="bitrecs_rec_id" value="n_0123abcd" /><input type="hidden" name="bitrecs_arm" value="interleave" />',
			ob_get_clean()
		);
		$_REQUEST = array( 'bitrecs_rec_id' => '"><b>' );
		ob_start();
		Bitrecs_Plugin::render_rec_id_field();
		$this->assertSame( '', ob_get_clean() );
	}

	public function test_classic_add_to_cart_keeps_the_rec_id_on_the_cart_item() {
		$_REQUEST = array( 'bitrecs_rec_id' => 'l_9f8e7d' );
		$this->assertSame( array( 'x' => 1, '_bitrecs_rec_id' => 'l_9f8e7d' ), Bitrecs_Plugin::add_cart_item_data( array( 'x' => 1 ), 5, 0 ) );
	}

	public function test_the_widget_form_property_is_read_too() {
		$_POST = array( 'properties' => array( '_bitrecs_rec_id' => 'n_abc', '_bitrecs_arm' => 'network' ) );
		$this->assertSame( array( '_bitrecs_rec_id' => 'n_abc', '_bitrecs_arm' => 'network' ), Bitrecs_Plugin::add_cart_item_data( array(), 5, 0 ) );
	}

	public function test_add_to_cart_without_a_valid_rec_id_adds_nothing() {
		$_REQUEST = array( 'bitrecs_rec_id' => str_repeat( 'a', 300 ) );
		$_POST    = array( 'properties' => 'not-an-array' );
		$this->assertSame( array(), Bitrecs_Plugin::add_cart_item_data( array(), 5, 0 ) );
	}

	public function test_store_api_add_to_cart_keeps_the_rec_id() {
		$data = array( 'id' => 5, 'quantity' => 1, 'variation' => array() );
		$this->assertSame(
			array( 'id' => 5, 'quantity' => 1, 'variation' => array(), 'cart_item_data' => array( '_bitrecs_rec_id' => 'n_77', '_bitrecs_arm' => 'local' ) ),
			Bitrecs_Plugin::store_api_add_to_cart_data( $data, new WP_REST_Request( array( 'bitrecs_rec_id' => 'n_77', 'bitrecs_arm' => 'local' ) ) )
		);
		$this->assertSame( $data, Bitrecs_Plugin::store_api_add_to_cart_data( $data, new WP_REST_Request( array( 'bitrecs_rec_id' => array( 'n_77' ) ) ) ) );
	}

	public function test_the_order_line_gets_the_rec_id_meta() {
		$item = new Bitrecs_Test_Order_Item();
		Bitrecs_Plugin::add_order_item_meta( $item, 'key', array( '_bitrecs_rec_id' => 'n_77', '_bitrecs_arm' => 'network' ), null );
		$this->assertSame( array( array( '_bitrecs_rec_id', 'n_77', true ), array( '_bitrecs_arm', 'network', true ) ), $item->meta );
		$plain = new Bitrecs_Test_Order_Item();
		Bitrecs_Plugin::add_order_item_meta( $plain, 'key', array( 'product_id' => 5 ), null );
		$this->assertSame( array(), $plain->meta );
	}

	public function test_the_consented_visitors_session_id_goes_from_the_cart_form_to_the_order_meta() {
		$_POST = array( 'attributes' => array( '_bitrecs_sid' => '0f8e2c1a-9b7d-4c3e-8a6f-5d4c3b2a1908' ) );
		$values = Bitrecs_Plugin::add_cart_item_data( array(), 5, 0 );
		$this->assertSame( array( '_bitrecs_sid' => '0f8e2c1a-9b7d-4c3e-8a6f-5d4c3b2a1908' ), $values );
		$order = new Bitrecs_Test_Order();
		$item  = new Bitrecs_Test_Order_Item();
		Bitrecs_Plugin::add_order_item_meta( $item, 'key', $values, $order );
		$this->assertSame( array( '_bitrecs_sid' => '0f8e2c1a-9b7d-4c3e-8a6f-5d4c3b2a1908' ), $order->meta );
		$this->assertSame( array(), $item->meta );
	}

	public function test_a_session_id_that_is_not_one_is_dropped() {
		foreach ( array( '<script>', 'short', str_repeat( 'a', 65 ), array( 'x' ) ) as $junk ) {
			$_POST = array( 'attributes' => array( '_bitrecs_sid' => $junk ) );
			$this->assertSame( array(), Bitrecs_Plugin::add_cart_item_data( array(), 5, 0 ) );
		}
		$_POST = array( 'attributes' => 'not-an-array' );
		$this->assertSame( array(), Bitrecs_Plugin::add_cart_item_data( array(), 5, 0 ) );
	}

	public function test_settings_are_sanitised_and_connect_starts_the_key_request_for_this_store() {
		Bitrecs_Settings::register_settings();
		$this->assertSame( array( 'Bitrecs_Settings', 'clean_site_key' ), $GLOBALS['bitrecs_wp']['settings']['bitrecs_site_key'][1]['sanitize_callback'] );
		$this->assertSame( 'abc-DEF_1', Bitrecs_Settings::clean_site_key( ' abc-DEF_1 ' ) );
		$this->assertSame( '', Bitrecs_Settings::clean_site_key( 'a b' ) );
		$this->assertSame( '', Bitrecs_Settings::clean_api_base( 'javascript:alert(1)' ) );
		$this->assertSame( 'https://recs.example/base', Bitrecs_Settings::clean_api_base( 'https://recs.example/base/' ) );
		$this->assertSame( 'https://app.bitrecs.ai/woocommerce/connect?store_url=https%3A%2F%2Fshop.example', Bitrecs_Settings::connect_url() );
	}

	/** The connected key of the shared test vector (merchants/tests/test_portal_signin.py checks the same link). */
	private function connect() {
		$GLOBALS['bitrecs_wp']['api_key'] = array(
			'key_id'          => '17',
			'consumer_secret' => 'cs_0123456789abcdef0123456789abcdef01234567',
		);
	}

	public function test_the_portal_link_is_signed_with_the_connected_keys_secret_and_lasts_5_minutes() {
		$this->connect();
		$url = Bitrecs_Settings::portal_signin_url( 1767225600, '00112233445566778899aabbccddeeff' );
		$this->assertSame(
			'https://app.bitrecs.ai/portal/woocommerce/signin?store_url=https%3A%2F%2Fshop.example&key_id=17&expires=1767225900'
			. '&nonce=00112233445566778899aabbccddeeff&signature=cc0377afce127d6ec4c76e010488f8672299bc5aae12f106a47cc926fc0d393c',
			$url
		);
		$this->assertSame(
			array( "SELECT key_id, consumer_secret FROM wp_woocommerce_api_keys WHERE description LIKE 'Bitrecs - API%' ORDER BY key_id DESC LIMIT 1" ),
			$GLOBALS['bitrecs_wp']['queries']
		);
	}

	public function test_each_link_gets_a_new_random_nonce() {
		$this->connect();
		parse_str( (string) parse_url( Bitrecs_Settings::portal_signin_url(), PHP_URL_QUERY ), $first );
		parse_str( (string) parse_url( Bitrecs_Settings::portal_signin_url(), PHP_URL_QUERY ), $second );
		$this->assertMatchesRegularExpression( '/^[0-9a-f]{32}$/', $first['nonce'] );
		$this->assertNotSame( $first['nonce'], $second['nonce'] );
	}

	public function test_without_a_connected_key_there_is_no_link() {
		$this->assertSame( '', Bitrecs_Settings::portal_signin_url( 1767225600, 'n' ) );
		$GLOBALS['bitrecs_wp']['api_key'] = array( 'key_id' => '3', 'consumer_secret' => 'not-a-secret' );
		$this->assertSame( '', Bitrecs_Settings::portal_signin_url( 1767225600, 'n' ) );
	}

	public function test_open_portal_checks_the_admin_nonce_and_redirects_to_a_fresh_link() {
		$this->connect();
		$this->assertSame( array( array( array( 'Bitrecs_Settings', 'open_portal' ), 10, 1 ) ), $this->hooked( 'actions', 'admin_post_bitrecs_portal' ) );
		try {
			Bitrecs_Settings::open_portal();
			$this->fail( 'open_portal must redirect' );
		} catch ( Bitrecs_Test_Exit $exit ) {
			$this->assertSame( 'redirect', $exit->kind );
			$this->assertStringStartsWith( 'https://app.bitrecs.ai/portal/woocommerce/signin?store_url=https%3A%2F%2Fshop.example&key_id=17&expires=', $exit->value );
		}
		$this->assertSame( array( 'bitrecs_portal' ), $GLOBALS['bitrecs_wp']['referer'] );
	}

	public function test_open_portal_refuses_a_user_who_cannot_manage_options_and_a_store_not_connected() {
		$GLOBALS['bitrecs_wp']['can'] = false;
		try {
			Bitrecs_Settings::open_portal();
			$this->fail( 'open_portal must refuse' );
		} catch ( Bitrecs_Test_Exit $exit ) {
			$this->assertSame( array( 'die', 403 ), array( $exit->kind, $exit->status ) );
		}
		$GLOBALS['bitrecs_wp']['can'] = true;
		try {
			Bitrecs_Settings::open_portal();
			$this->fail( 'open_portal must refuse' );
		} catch ( Bitrecs_Test_Exit $exit ) {
			$this->assertSame( array( 'die', 409 ), array( $exit->kind, $exit->status ) );
		}
	}

	public function test_the_settings_page_shows_the_portal_button_once_connected() {
		ob_start();
		Bitrecs_Settings::render_page();
		$before = ob_get_clean();
		$this->connect();
		ob_start();
		Bitrecs_Settings::render_page();
		$after = ob_get_clean();
		$this->assertStringNotContainsString( 'id="bitrecs-portal"', $before );
		$this->assertStringContainsString( 'Connect your store first (step 1).', $before );
		$this->assertStringContainsString(
			'id="bitrecs-portal" target="_blank" rel="noopener noreferrer" href="https://shop.example/wp-admin/admin-post.php?action=bitrecs_portal&amp;_wpnonce=nonce-of-bitrecs_portal"',
			$after
		);
	}
}
